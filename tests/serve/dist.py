"""Distributed artifacts (F5): FLOW_MODE=part writes shard FLOW_SHARD with
upsert_artifact in group FLOW_GROUP; FLOW_MODE=finish calls finish_artifact and checks the one
version (files, digest equal to the SDK's own for the union); FLOW_MODE=refused expects the
finish to fail (conflicting paths)."""
import os
import wandb
from common import ENTITY, PROJECT, check, done, path, write

MODE = os.environ["FLOW_MODE"]
GROUP = os.environ["FLOW_GROUP"]
NAME = os.environ.get("FLOW_NAME", "dist")

if MODE == "part":
    rel = os.environ["FLOW_FILE"]
    body = os.environ["FLOW_BODY"].encode()
    with wandb.init(entity=ENTITY, project=PROJECT, group=GROUP, job_type="shard") as run:
        art = wandb.Artifact(NAME, type="dataset")
        art.add_file(write("part/" + rel, body), name=rel)
        run.upsert_artifact(art, distributed_id=GROUP)
        art.wait()
        check(art.state == "PENDING", "an upserted part is pending, got %s" % art.state)
    done({"run": run.id})
elif MODE == "finish":
    shards = os.environ["FLOW_EXPECT"].split(",")
    with wandb.init(entity=ENTITY, project=PROJECT, group=GROUP, job_type="finish") as run:
        art = wandb.Artifact(NAME, type="dataset")
        run.finish_artifact(art, aliases=["latest", "merged"], distributed_id=GROUP)
        art.wait()
    api = wandb.Api()
    got = api.artifact("%s/%s/%s:latest" % (ENTITY, PROJECT, NAME))
    names = sorted(f.name for f in got.files())
    check(names == sorted(shards), "files %r != %r" % (names, sorted(shards)))
    # The SDK's own digest of the same files, added to one artifact.
    union = wandb.Artifact("union", type="dataset")
    for rel in shards:
        union.add_file(write("union/" + rel, os.environ["FLOW_BODY_" + rel.replace(".", "_")].encode()), name=rel)
    check(got.digest == union.digest, "digest %s != the SDK's %s" % (got.digest, union.digest))
    check("merged" in got.aliases, "aliases %r" % got.aliases)
    root = got.download(root=path("dl"))
    for rel in shards:
        data = open(os.path.join(root, rel), "rb").read()
        check(data.decode() == os.environ["FLOW_BODY_" + rel.replace(".", "_")], "bytes of " + rel)
    done({"version": got.version, "digest": got.digest, "run": run.id})
elif MODE == "refused":
    with wandb.init(entity=ENTITY, project=PROJECT, group=GROUP, job_type="finish") as run:
        art = wandb.Artifact(NAME, type="dataset")
        run.finish_artifact(art, distributed_id=GROUP)
        try:
            art.wait()
            failed = None
        except Exception as e:  # the commit's GraphQL error, as the SDK raises it
            failed = str(e)
    check(failed and "different content" in failed, "the finish was not refused: %r" % failed)
    print("FLOW-RESULT {}")
