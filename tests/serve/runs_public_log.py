"""`Api().run(path).log_artifact(...)` and `.use_artifact(...)` on a finished run: the run then
lists the version among its logged and used artifacts, and the new alias is set."""
import wandb

from common import ENTITY, PROJECT, check, done, write

a = wandb.init(entity=ENTITY, project=PROJECT, job_type="make")
art = wandb.Artifact("data", type="dataset")
art.add_file(write("d/x.txt", b"x\n"))
a.log_artifact(art)
a.finish()

b = wandb.init(entity=ENTITY, project=PROJECT, job_type="adopt")
b_id = b.id
b.finish()

api = wandb.Api()
v0 = api.artifact(f"{ENTITY}/{PROJECT}/data:v0")
rb = api.run(f"{ENTITY}/{PROJECT}/{b_id}")
rb.log_artifact(v0, aliases=["adopted"])
rb.use_artifact(v0)

rb = wandb.Api().run(f"{ENTITY}/{PROJECT}/{b_id}")
logged = [x.name for x in rb.logged_artifacts()]
used = [x.name for x in rb.used_artifacts()]
check(logged == ["data:v0"], "logged by b: %r" % logged)
check(used == ["data:v0"], "used by b: %r" % used)
again = wandb.Api().artifact(f"{ENTITY}/{PROJECT}/data:adopted")
check(again.version == "v0", "alias set: %r" % again.version)
done({"b": b_id})
