"""What the caller's roles allow: writing an artifact into the org entity and creating a
registry. FLOW_EXPECT is `write` (both must work) or `read` (both must be refused, and
reading still works)."""
import os

import wandb
from common import FAIL, TMP, check, done, write

expect = os.environ["FLOW_EXPECT"]
api = wandb.Api()
org = api.organization("acme")
check(org.org_entity.name == "acme-org", "org %r" % org.name)

write("m/w.bin", b"\x01" * 100 + os.environ["FLOW_TAG"].encode())
wrote = created = True
try:
    with wandb.init(entity="acme-org", project="shared", job_type="t") as run:
        a = wandb.Artifact("weights", type="model")
        a.add_dir(os.path.join(TMP, "m"))
        run.log_artifact(a).wait()
except Exception:
    wrote = False
try:
    api.create_registry("by-" + os.environ["FLOW_TAG"], "organization", organization="acme")
except ValueError:
    created = False
names = sorted(r.name for r in api.registries(organization="acme"))
if expect == "read":
    check(not wrote and not created, "a viewer wrote %s, created %s" % (wrote, created))
    FAIL.records.clear()  # the refused writes were logged; that was the point
else:
    check(wrote and created, "a member could not write (%s) or create (%s)" % (wrote, created))
done({"registries": names})
