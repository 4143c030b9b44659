from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import Message, User
from providers.tenancy import scope_to_provider


def user_list_for(*, user: User) -> QuerySet[User]:
    """Users the caller administers: their provider's, or everyone's for a platform administrator."""
    return scope_to_provider(User.objects.all(), user).select_related("provider").prefetch_related("roles")


def user_get_for(*, user: User, user_id: int) -> User:
    return get_object_or_404(user_list_for(user=user), pk=user_id)


def message_list_for(*, user: User) -> QuerySet[Message]:
    """E-mails of the caller's provider (every provider's for a platform administrator), newest first."""
    return scope_to_provider(Message.objects.all(), user)


def message_get_for(*, user: User, message_id: int) -> Message:
    return get_object_or_404(message_list_for(user=user), pk=message_id)
