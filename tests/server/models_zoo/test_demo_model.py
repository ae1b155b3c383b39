"""``make demo`` with a Docker engine registers the demo container challenge's image once as the demo team's
model (issue 16 item 1): seeding again keeps one model and one version, and the model is submitted from its
stored file to the container phase."""

from __future__ import annotations

import pytest

from assay.server.submissions.services.submit import SubmissionFields
from tests.server.test_demo_container import CONTAINER_BUNDLE, DEMO_BUNDLE, demo_var, engine  # noqa: F401  (fixtures)


@pytest.mark.django_db
def test_the_demo_registers_its_image_as_a_model_once(engine, demo_var) -> None:  # noqa: F811
    from assay.server import demo
    from assay.server.models_zoo.models import Model
    from assay.server.models_zoo.services.submitting import submit_model

    lines = list(demo.seed("pw", str(DEMO_BUNDLE), str(CONTAINER_BUNDLE), site="http://testserver"))
    model = Model.objects.get(name=demo.DEMO_MODEL)
    assert any(f"/models/{model.pk}/" in line for line in lines), lines
    version = model.versions.get()
    assert model.kind == "image" and version.image_digest.startswith("sha256:") and model.intended_use
    list(demo.seed("pw", str(DEMO_BUNDLE), str(CONTAINER_BUNDLE)))  # the same image: no new version
    assert Model.objects.filter(name=demo.DEMO_MODEL).count() == 1 and model.versions.count() == 1
    participation = model.team.participations.get(challenge__is_docker_based=True)
    participation.terms_accepted_at = participation.created_at  # the demo team accepts the terms on the page
    participation.save()
    container = participation.challenge
    sub = submit_model(model.created_by, version, container.phases.get(codename="container"), SubmissionFields())
    assert sub.input_file.name == version.file.name and sub.image_digest == version.image_digest
