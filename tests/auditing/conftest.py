# The invoicing fixtures (a flat-priced provider, a billable connection, staff, a payment method).
from tests.invoicing.conftest import cash, connection, creator, flat_provider, super_creator  # noqa: F401
