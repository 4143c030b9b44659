from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from accounts.roles import Role


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(email=normalize_email(username or ""))

    def create_user(self, email: str, password: str | None = None, **fields: object) -> "User":
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)  # None gives an unusable password
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: object) -> "User":
        """`createsuperuser`: a platform administrator, with no provider and the Admin role."""
        fields.update(is_staff=True, is_superuser=True, provider=None)
        user = self.create_user(email, password, **fields)
        UserRole.objects.create(user=user, role=Role.ADMIN)
        return user


def normalize_email(email: str) -> str:
    """Emails are compared and stored lower-case, so one address is one account."""
    return email.strip().lower()


class Language(models.TextChoices):
    """The languages pages and messages are written in; Urdu reads right to left."""

    ENGLISH = "en", "English"
    URDU = "ur", "اردو (Urdu)"


RIGHT_TO_LEFT = frozenset({Language.URDU})


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in: staff of a provider, a customer, or a platform administrator.

    Roles live in `UserRole` (one user may hold several); the role a request acts in comes from
    its token. `provider` is empty only for platform administrators.
    """

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150)
    phone = models.CharField(max_length=30, blank=True)
    address = models.CharField(max_length=300, blank=True)
    # Printed on adjustment receipts beside the officer's name.
    designation = models.CharField(max_length=100, blank=True)
    # The language of pages (and e-mails) this user chose; blank: their browser's. A customer's
    # choice is kept on their customer record (billing's customer_language_of).
    language = models.CharField(max_length=5, blank=True, choices=Language.choices)
    provider = models.ForeignKey(
        "providers.Provider", on_delete=models.PROTECT, null=True, blank=True, related_name="users"
    )
    is_active = models.BooleanField(default=True)
    # Django admin access.
    is_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    # The role this request acts in, set from its token by the authentication; never stored.
    active_role: Role | None = None

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["name", "email"]
        constraints = [
            models.CheckConstraint(condition=models.Q(email=Lower("email")), name="user_email_lower_case"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name

    @property
    def role_names(self) -> list[str]:
        """Roles held, in the order of `Role`; uses prefetched roles when present."""
        held = {user_role.role for user_role in self.roles.all()}
        return [role.value for role in Role if role in held]


class UserRole(models.Model):
    """One role held by one user; a user holds at least one."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=20, choices=Role.choices)
    assigned_at = models.DateTimeField(auto_now_add=True)
    assigned_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["user_id", "role"]
        constraints = [
            models.UniqueConstraint(fields=["user", "role"], name="user_role_unique"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="user_role_known"),
        ]

    def __str__(self) -> str:
        return f"{self.user.email}: {self.role}"


class RoleSelectionTicket(models.Model):
    """Proof that a password was just checked, traded once for a token in a chosen role.

    Only a hash of the ticket is stored: a leaked table cannot be replayed.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, unique=True)  # SHA-256 hex of the ticket
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return f"role selection ticket of user {self.user_id}"


class MessageKind(models.TextChoices):
    INVITATION = "invitation", "Invitation to sign in"
    PASSWORD_RESET = "password_reset", "Password reset"
    BILL_ISSUED = "bill_issued", "Bill issued"
    BILL_DUE_SOON = "bill_due_soon", "Bill due soon"
    BILL_OVERDUE = "bill_overdue", "Bill overdue"
    PAYMENT_RECEIVED = "payment_received", "Payment received"
    PAYMENT_REVERSED = "payment_reversed", "Payment reversed"
    DUNNING_REMINDER = "dunning_reminder", "Overdue reminder"
    FINAL_NOTICE = "final_notice", "Final notice before disconnection"
    DISCONNECTION_NOTICE = "disconnection_notice", "Disconnection order"


# Sent whatever the customer's notification choices: they carry a way in, not news.
ALWAYS_SENT = frozenset({MessageKind.INVITATION, MessageKind.PASSWORD_RESET})


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    # A transient failure (the mail server unreachable or busy): tried again later, a bounded number of times.
    RETRYING = "retrying", _("Retrying")
    # A hard failure (the address refused, retries used up): never tried again; staff see it.
    FAILED = "failed", _("Failed")


UNSENT = (MessageStatus.QUEUED, MessageStatus.RETRYING)


class Message(models.Model):
    """One e-mail: who it is for, what it is about, and how sending it went.

    Written by the service whose change it reports, in that change's transaction, and sent by a
    Celery task once the transaction commits. Its content is built when it is sent, by the builder the
    app owning `about_type` registered for its kind (`accounts.messaging`).
    """

    provider = models.ForeignKey(
        "providers.Provider", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages")
    recipient = models.EmailField()
    kind = models.CharField(max_length=20, choices=MessageKind.choices)
    # The row it is about, named as the audit trail names rows: "invoicing.invoice" and its id.
    about_type = models.CharField(max_length=60)
    about_id = models.BigIntegerField()
    language = models.CharField(max_length=5, choices=Language.choices, default=Language.ENGLISH)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)  # deliveries tried, the successful one included
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("invite_customer", "Can invite a customer to sign in")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=MessageKind.values), name="message_kind_known"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=MessageStatus.values), name="message_status_known"
            ),
            # News about a bill or a payment is told once (a reminder job run twice sends nothing more);
            # an invitation or a password reset may be asked for again.
            models.UniqueConstraint(
                fields=["kind", "about_type", "about_id"],
                condition=~models.Q(kind__in=ALWAYS_SENT),
                name="message_once_per_object",
            ),
        ]
        indexes = [
            models.Index(fields=["provider", "status"], name="message_provider_status"),
            models.Index(fields=["about_type", "about_id"], name="message_about"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def right_to_left(self) -> bool:
        return self.language in RIGHT_TO_LEFT


class NotificationSettings(models.Model):
    """A provider's choices about the e-mails its customers get; a provider without a row has the defaults."""

    DEFAULT_DUE_REMINDER_DAYS = 3

    provider = models.OneToOneField(
        "providers.Provider", on_delete=models.CASCADE, related_name="notification_settings"
    )
    # The "due soon" reminder goes this many days before a bill's due date.
    due_reminder_days = models.PositiveSmallIntegerField(
        default=DEFAULT_DUE_REMINDER_DAYS, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "notification settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(due_reminder_days__gte=1, due_reminder_days__lte=30),
                name="notification_due_reminder_days_range",
            )
        ]

    def __str__(self) -> str:
        return f"notification settings of provider {self.provider_id}"
