"""Storage regions as W&B checks them: a region the server knows (`default`, or one given to
`--storage-region`) is stored and read back; an unknown one is refused with W&B's error."""
import wandb
from common import ENTITY, FAIL, PROJECT, check, done, path, tree, write

write("r/a.txt", b"regional\n")
with wandb.init(entity=ENTITY, project=PROJECT) as run:
    art = wandb.Artifact("regional", type="dataset", storage_region="minio-local")
    art.add_dir(path("r"))
    run.log_artifact(art)
    art.wait()
got = wandb.Api().artifact("%s/%s/regional:latest" % (ENTITY, PROJECT))
check(got.manifest.to_manifest_json()["storagePolicyConfig"].get("storageRegion") == "minio-local",
      "the manifest keeps its region")
check(tree(got.download(root=path("dl"))) == tree(path("r")), "bytes read back")

refused = ""
with wandb.init(entity=ENTITY, project=PROJECT) as run:
    try:
        art = wandb.Artifact("elsewhere", type="dataset", storage_region="coreweave-us")
        run.log_artifact(art)
        art.wait()
    except ValueError as e:
        refused = str(e)
check("invalid storageRegion: coreweave-us" in refused, "refusal: %r" % refused)
# The refusal is the one thing the SDK is expected to log.
FAIL.records = [r for r in FAIL.records if "coreweave-us" not in r]
done({"refused": refused})
