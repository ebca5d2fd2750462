import factory
from factory.django import DjangoModelFactory

from agents.models import Agent
from integrations.models import Installation, MessageStatus, OutboxMessage
from orgs import tokens
from orgs.models import ApiToken, Invitation, Membership, Organization, Role, TokenScope, User
from storage.models import StorageBinding, StoredFile
from triggers.models import ChatProvider, Environment, Job, Schedule, Trigger


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password("correct-horse-battery")


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    org = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


def make_token(org, *, scope_type=TokenScope.ORG, **fields) -> tuple[ApiToken, str]:
    """A token row and its plaintext (the service is exercised by its own tests)."""
    raw = tokens.generate()
    token = ApiToken.objects.create(
        org=org,
        name=fields.pop("name", f"{scope_type} token"),
        token_hash=tokens.hash_token(raw),
        prefix=tokens.visible_prefix(raw),
        scope_type=scope_type,
        **fields,
    )
    return token, raw


class StorageBindingFactory(DjangoModelFactory):
    """A binding row; the endpoint is not contacted unless a test points it at moto."""

    class Meta:
        model = StorageBinding

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"binding-{n}")
    endpoint = "https://s3.example.com"
    region = "us-east-1"
    bucket = "deplite-test"
    access_key = "AKIAFACTORY"
    secret_key = "factory-secret"
    path_style = True


class StoredFileFactory(DjangoModelFactory):
    class Meta:
        model = StoredFile

    org = factory.SubFactory(OrganizationFactory)
    binding = factory.LazyAttribute(lambda o: StorageBindingFactory(org=o.org))
    file_name = factory.Sequence(lambda n: f"file-{n}.tar.gz")
    content_type = "application/gzip"
    object_key = factory.LazyAttribute(lambda o: f"deplite/{o.org.pk}/{o.file_name}")


class TriggerFactory(DjangoModelFactory):
    class Meta:
        model = Trigger

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"deploy-{n}")
    workflow = "deploy"
    agent_labels = factory.LazyFunction(list)


class JobFactory(DjangoModelFactory):
    class Meta:
        model = Job

    org = factory.SubFactory(OrganizationFactory)
    trigger = factory.SubFactory(TriggerFactory, org=factory.SelfAttribute("..org"))
    trigger_name = factory.LazyAttribute(lambda job: job.trigger.name if job.trigger else "deleted")
    workflow = factory.LazyAttribute(lambda job: job.trigger.workflow if job.trigger else "deploy")
    agent_labels = factory.LazyAttribute(lambda job: list(job.trigger.agent_labels) if job.trigger else [])
    ref = "main"


class EnvironmentFactory(DjangoModelFactory):
    class Meta:
        model = Environment

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"env-{n}")


class InstallationFactory(DjangoModelFactory):
    """A linked Slack workspace (pass provider=ChatProvider.DISCORD for a guild)."""

    class Meta:
        model = Installation

    org = factory.SubFactory(OrganizationFactory)
    provider = ChatProvider.SLACK
    external_id = factory.Sequence(lambda n: f"T{n:05d}")
    name = factory.Sequence(lambda n: f"workspace-{n}")
    bot_user_id = "U0BOT"
    scopes = factory.LazyFunction(lambda: ["app_mentions:read", "chat:write", "commands"])
    bot_token = factory.Sequence(lambda n: f"xoxb-test-{n:04d}")


class AgentFactory(DjangoModelFactory):
    """`agent.secret` holds the plaintext secret (the field decrypts on read)."""

    class Meta:
        model = Agent

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"agent-{n}")
    labels = factory.LazyFunction(list)
    secret = factory.Sequence(lambda n: f"das_test-secret-{n:04d}-0123456789abcdef")


class ScheduleFactory(DjangoModelFactory):
    """A schedule of a trigger of `org`, made by a member (pass created_by=… for a given person)."""

    class Meta:
        model = Schedule

    org = factory.SubFactory(OrganizationFactory)
    trigger = factory.SubFactory(TriggerFactory, org=factory.SelfAttribute("..org"))
    cron = "0 9 * * 1-5"
    timezone = "UTC"
    created_by = factory.LazyAttribute(lambda s: MembershipFactory(org=s.org).user)
    actor_kind = "user"
    actor_label = factory.LazyAttribute(lambda s: s.created_by.email if s.created_by else "")


# Model → callable(org) that makes one row of that model in `org`. The isolation matrix
# (tests/orgs/test_isolation.py) uses it to put a victim object behind every detail URL
# under /api/orgs/<orgId>/; every app registers its org-scoped models here.
class OutboxMessageFactory(DjangoModelFactory):
    class Meta:
        model = OutboxMessage

    org = factory.SubFactory(OrganizationFactory)
    job = factory.SubFactory(JobFactory, org=factory.SelfAttribute("..org"))
    provider = "slack"
    channel = "C0456"
    status = MessageStatus.FAILED
    last_error = "channel_not_found"


VICTIM_FACTORIES: dict = {
    Membership: lambda org: MembershipFactory(org=org),
    Invitation: lambda org: Invitation.objects.create(org=org, email=f"invited-{org.slug}@example.test"),
    ApiToken: lambda org: make_token(org)[0],
    StorageBinding: lambda org: StorageBindingFactory(org=org),
    StoredFile: lambda org: StoredFileFactory(org=org),
    Trigger: lambda org: TriggerFactory(org=org),
    Job: lambda org: JobFactory(org=org),
    Schedule: lambda org: ScheduleFactory(org=org),
    Environment: lambda org: EnvironmentFactory(org=org),
    Agent: lambda org: AgentFactory(org=org),
    Installation: lambda org: InstallationFactory(org=org),
    OutboxMessage: lambda org: OutboxMessageFactory(org=org),
}
