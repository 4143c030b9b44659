from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.roles import Role
from accounts.tasks import purge_expired_auth_records
from accounts.tokens import token_pair_for
from tests.factories import UserFactory
from tests.realstack.conftest import wait_until

pytestmark = pytest.mark.realstack


def test_a_real_worker_purges_expired_sign_in_records(celery_worker, provider):
    user = UserFactory(provider=provider, roles=[Role.AUDITOR])
    token_pair_for(user=user, role=Role.AUDITOR)
    token_pair_for(user=user, role=Role.AUDITOR)
    OutstandingToken.objects.filter(pk=OutstandingToken.objects.earliest("pk").pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    purge_expired_auth_records.delay()

    wait_until(
        lambda: OutstandingToken.objects.count() == 1, message="the worker did not purge the expired token"
    )
    assert OutstandingToken.objects.get().expires_at > timezone.now()
