"""A user's roles and permissions, kept in each process between requests (openspc.roles, issue #20):
read once, and read again on the next request after any change of who holds what: a user's groups
or own permissions, a group's permissions."""

import pytest
from django.contrib.auth.models import Group, Permission, User

from openspc.roles import Role, has_role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADD_LIMITS = "config.add_controllimits"


def _request_user(pk: int) -> User:
    """The user as a new request loads it (nothing cached on the object)."""
    return User.objects.get(pk=pk)


def _checked_user(pk: int) -> User:
    """The user of a new request after its first role check, as the API's permission classes make
    it: the permissions are then those kept with the roles."""
    user = _request_user(pk)
    has_role(user, Role.MANAGER)
    return user


def test_the_access_of_a_user_is_read_once(django_assert_num_queries):
    specialist = UserFactory(roles=[Role.QUALITY_SPECIALIST])
    with django_assert_num_queries(2):  # the user, then its roles and permissions in one statement
        user = _request_user(specialist.pk)
        assert has_role(user, Role.QUALITY_SPECIALIST)
    with django_assert_num_queries(1):  # the user only, as authentication reads it
        user = _request_user(specialist.pk)
        assert has_role(user, Role.QUALITY_SPECIALIST)
        assert user.has_perm(ADD_LIMITS)


def test_a_role_taken_away_counts_on_the_next_request():
    specialist = UserFactory(roles=[Role.QUALITY_SPECIALIST])
    assert has_role(_request_user(specialist.pk), Role.QUALITY_SPECIALIST)
    specialist.groups.remove(Group.objects.get(name=Role.QUALITY_SPECIALIST))
    user = _request_user(specialist.pk)
    assert not has_role(user, Role.QUALITY_SPECIALIST)
    assert not user.has_perm(ADD_LIMITS)


def test_a_permission_taken_from_a_group_or_given_to_a_user_counts_on_the_next_request():
    specialist = UserFactory(roles=[Role.QUALITY_SPECIALIST])
    tester = UserFactory(roles=[Role.TESTER])
    assert _checked_user(specialist.pk).has_perm(ADD_LIMITS)
    assert not _checked_user(tester.pk).has_perm(ADD_LIMITS)
    permission = Permission.objects.get(content_type__app_label="config", codename="add_controllimits")
    Group.objects.get(name=Role.QUALITY_SPECIALIST).permissions.remove(permission)
    tester.user_permissions.add(permission)
    assert not _checked_user(specialist.pk).has_perm(ADD_LIMITS)
    assert _checked_user(tester.pk).has_perm(ADD_LIMITS)
