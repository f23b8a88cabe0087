"""The public API's `Run.log_artifact` (createArtifact with `artifactCollectionNames`) records an
existing version as logged by a finished run."""
import wandb
from common import ENTITY, PROJECT, check, done

with wandb.init(entity=ENTITY, project=PROJECT) as run:
    pass
api = wandb.Api()
run = api.run(run.path)
artifact = wandb.Artifact("saved", type="test")
with artifact.new_file("a.txt") as f:
    f.write("saved outside a run\n")
artifact.save(project=PROJECT)
artifact.wait()
run.log_artifact(artifact)
logged = [a.qualified_name for a in run.logged_artifacts()]
check(logged == [artifact.qualified_name], "logged %r, want %r" % (logged, artifact.qualified_name))
done({"logged": logged})
