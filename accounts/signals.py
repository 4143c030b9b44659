"""Events of the accounts app that model signals cannot tell: which role a session acts in.

Sent by `accounts.services` after the change they report; the audit trail listens. Every signal
is sent with `sender=User` and the keyword arguments listed.
"""

from django.dispatch import Signal

role_selected = Signal()  # user, role: a multi-role user chose the role of a new session
role_switched = Signal()  # user, from_role, to_role: a session moved to another role the user holds
role_removed = Signal()  # user, role, removed_by: an administrator took a role away
password_set = Signal()  # user: a password was set through an invitation or password reset link
