"""historyStep: a version logged after the run's first `log()` records that step (the SDK's
`artifact.history_step` is the step before it); one logged before any has none."""
import wandb
from common import ENTITY, PROJECT, check, done

with wandb.init(entity=ENTITY, project=PROJECT) as run:
    for i in range(2):
        art = wandb.Artifact("stepped", "test-type")
        with art.new_file("test.txt", "w") as f:
            f.write("testing %d" % i)
        run.log_artifact(art)
        wandb.log({"metric": 5})

api = wandb.Api()
v0 = api.artifact("%s/%s/stepped:v0" % (ENTITY, PROJECT))
v1 = api.artifact("%s/%s/stepped:v1" % (ENTITY, PROJECT))
check(v0.history_step is None, "v0.history_step = %r" % v0.history_step)
check(v1.history_step == 0, "v1.history_step = %r" % v1.history_step)
done({"v0": v0.history_step, "v1": v1.history_step})
