"""F4 + F6 edits: use_artifact(wandb.Artifact(...)) logs it if missing (idempotent); save()
after editing description, metadata and aliases; delete() refused while aliased, then
delete(delete_aliases=True)."""
import wandb
from common import ENTITY, PROJECT, check, done, path, write

write("m/weights.bin", b"\x00\x01" * 5000)
write("m/config.json", b'{"layers": 3}')
with wandb.init(entity=ENTITY, project=PROJECT, job_type="eval") as run:
    draft = wandb.Artifact("model", type="model")
    draft.add_dir(path("m"))
    used = run.use_artifact(draft)
    used.wait()
    check(used.version == "v0", "use of a new artifact logs v0, got %s" % used.version)
    again = wandb.Artifact("model", type="model")
    again.add_dir(path("m"))
    used2 = run.use_artifact(again, aliases=["x-alias"])
    used2.wait()
    check(used2.version == "v0", "use of the same content again is v0, got %s" % used2.version)
    write("m/config.json", b'{"layers": 4}')
    v1 = wandb.Artifact("model", type="model")
    v1.add_dir(path("m"))
    run.log_artifact(v1)
    v1.wait()
    check(v1.version == "v1", "new content is v1, got %s" % v1.version)

api = wandb.Api()
name = "%s/%s/model" % (ENTITY, PROJECT)
a = api.artifact(name + ":v0")
check("x-alias" in a.aliases, "dedup applied the alias: %r" % a.aliases)
a.description = "edited"
a.metadata["acc"] = 0.9
a.aliases.append("best")
a.aliases.remove("x-alias")
a.save()
b = api.artifact(name + ":best")
check(b.version == "v0" and b.description == "edited", "edit kept: %s %r" % (b.version, b.description))
check(b.metadata == {"acc": 0.9}, "metadata %r" % b.metadata)
check(sorted(b.aliases) == ["best"], "aliases after save %r" % b.aliases)
# Moving an alias takes it from the other version.
c = api.artifact(name + ":v1")
c.aliases.append("best")
c.save()
check(sorted(api.artifact(name + ":v0").aliases) == [], "best moved off v0")
check(api.artifact(name + ":best").version == "v1", "best is on v1")

refused = False
try:
    api.artifact(name + ":v1").delete()
except Exception as e:  # the server refuses: v1 has aliases
    refused = "alias" in str(e)
check(refused, "delete() of an aliased version is refused")
api.artifact(name + ":v0").delete()
api.artifact(name + ":v1").delete(delete_aliases=True)
left = [v.version for v in api.artifacts("model", name)]
check(left == [], "versions after deletes: %r" % left)
check(not api.artifact_exists(name + ":v0"), "v0 deleted")
wandb.termlog("ok")
done()
