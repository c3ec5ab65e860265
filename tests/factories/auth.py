import functools

import factory
from django.conf import settings
from django.contrib.auth.hashers import make_password

PASSWORD = "correct horse battery staple"


@functools.cache
def password_hash() -> str:
    # Hashing is deliberately slow; one hash shared by every factory user keeps tests fast.
    return make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = settings.AUTH_USER_MODEL

    username = factory.Sequence(lambda n: f"user{n:04d}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.LazyFunction(password_hash)
    is_active = True


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "auth.Group"

    name = factory.Sequence(lambda n: f"Workshop planners {n}")


class TokenFactory(factory.django.DjangoModelFactory):
    """An API token (the admin lists them through DRF's TokenProxy)."""

    class Meta:
        model = "authtoken.TokenProxy"

    user = factory.SubFactory(UserFactory)
