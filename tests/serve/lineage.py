"""Lineage through the SDK: run A (preprocess) logs raw, run B uses raw:v0 and logs model, run C uses
model:latest; the public API walks the graph both ways and gets exactly those runs and versions."""
import wandb
from common import ENTITY, PROJECT, check, done, write

write("raw/rides.csv", b"ride,km\n1,12\n")
write("model/weights.bin", b"\x00\x01weights")

with wandb.init(entity=ENTITY, project=PROJECT, job_type="preprocess") as run:
    art = wandb.Artifact("raw", type="dataset")
    art.add_file(write("raw/rides.csv", b"ride,km\n1,12\n"))
    run.log_artifact(art)
    art.wait()
    a_id = run.id

with wandb.init(entity=ENTITY, project=PROJECT, job_type="train") as run:
    raw = run.use_artifact("raw:v0")
    raw.download()
    art = wandb.Artifact("model", type="model")
    art.add_file(write("model/weights.bin", b"\x00\x01weights"))
    run.log_artifact(art)
    art.wait()
    b_id = run.id

with wandb.init(entity=ENTITY, project=PROJECT, job_type="eval") as run:
    model = run.use_artifact("model:latest")
    check(model.version == "v0", "model:latest is %s" % model.version)
    c_id = run.id

api = wandb.Api()
scope = "%s/%s" % (ENTITY, PROJECT)
raw = api.artifact(scope + "/raw:v0")
model = api.artifact(scope + "/model:v0")
check(raw.logged_by().id == a_id, "raw logged_by %r != %r" % (raw.logged_by().id, a_id))
check(raw.logged_by().job_type == "preprocess", "job_type %r" % raw.logged_by().job_type)
check([r.id for r in raw.used_by()] == [b_id], "raw used_by %r" % [r.id for r in raw.used_by()])
check(model.logged_by().id == b_id, "model logged_by %r" % model.logged_by().id)
check([r.id for r in model.used_by()] == [c_id], "model used_by %r" % [r.id for r in model.used_by()])


def names(arts):
    return sorted(a.name for a in arts)


# The Run objects logged_by()/used_by() return (W&B's lightweight run fragment).
runs = {a_id: raw.logged_by(), b_id: model.logged_by(), c_id: list(model.used_by())[0]}
got = {
    rid: {"logged": names(r.logged_artifacts()), "used": names(r.used_artifacts())}
    for rid, r in runs.items()
}
want = {
    a_id: {"logged": ["raw:v0"], "used": []},
    b_id: {"logged": ["model:v0"], "used": ["raw:v0"]},
    c_id: {"logged": [], "used": ["model:v0"]},
}
check(got == want, "run artifacts %r != %r" % (got, want))
check(runs[a_id].job_type == "preprocess", "run A job_type %r" % runs[a_id].job_type)

# The full Run object `Api().run(path)` loads (W&B's heavy fragment) walks the same edges.
b = api.run("%s/%s" % (scope, b_id))
check(b.job_type == "train", "api.run job_type %r" % b.job_type)
check(
    (names(b.logged_artifacts()), names(b.used_artifacts())) == (["model:v0"], ["raw:v0"]),
    "api.run(B) artifacts %r" % ((names(b.logged_artifacts()), names(b.used_artifacts())),),
)
done({"a": a_id, "b": b_id, "c": c_id})
