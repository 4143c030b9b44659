"""Reads for a connection's lifecycle steps, scoped to the caller: another provider's connection,
customer or connection type is not found (404)."""

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import User
from billing.models import ConnectionEvent, Customer, ServiceConnection
from billing.selectors import connection_get_for
from config.errors import NotFound
from providers.models import ConnectionType
from providers.tenancy import scope_to_provider


def connection_events_of(connection: ServiceConnection) -> QuerySet[ConnectionEvent]:
    """A connection's steps, oldest first, with what the history shows of each (1 query)."""
    return (
        ConnectionEvent.objects.filter(connection=connection)
        .select_related("customer", "reading", "recorded_by")
        .order_by("effective_at", "pk")
    )


def connection_events_for(*, user: User, connection_id: int) -> QuerySet[ConnectionEvent]:
    return connection_events_of(connection_get_for(user=user, connection_id=connection_id))


def incoming_customer_for(*, user: User, connection: ServiceConnection, number: str) -> Customer:
    """The customer a connection passes to on a move: one of the connection's provider, by number."""
    customer = (
        scope_to_provider(Customer.objects.filter(provider_id=connection.provider_id), user)
        .filter(number=number)
        .first()
    )
    if customer is None:
        raise NotFound(
            _("No customer %(number)s of %(provider)s.")
            % {"number": number, "provider": connection.provider.name},
            field="incomingCustomer",
        )
    return customer


def connection_type_for(*, connection: ServiceConnection, code: str) -> ConnectionType:
    """A connection type of the connection's own provider, by code."""
    found = ConnectionType.objects.filter(provider_id=connection.provider_id, code=code).first()
    if found is None:
        raise NotFound(
            _("No connection type %(code)s of %(provider)s.")
            % {"code": code, "provider": connection.provider.name},
            field="connectionType",
        )
    return found
