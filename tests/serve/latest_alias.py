"""`latest` is an alias like the others: the walkthrough's update block (verbatim) removes it
through save(); the next log moves it to the new version; `artfs alias` can set it (the Rust side)."""
import os

import wandb
from common import ENTITY, PROJECT, check, done, write

name = "%s/%s/bikes" % (ENTITY, PROJECT)
for i in range(2):
    write("d/rides.csv", b"id,km\n%d,1\n" % i)
    with wandb.init(entity=ENTITY, project=PROJECT) as run:
        art = wandb.Artifact("bikes", type="dataset")
        art.add_file(os.path.join(os.environ["FLOW_TMP"], "d/rides.csv"))
        run.log_artifact(art)

api = wandb.Api()
# W&B's walkthrough, "Update an artifact":
artifact = api.artifact(name + ":latest")
# Update the description
artifact.description = "My new description"
# Selectively update metadata keys
artifact.metadata["oldKey"] = "new value"
# Replace the metadata entirely
artifact.metadata = {"newKey": "new value"}
# Add an alias
artifact.aliases.append("best")
# Remove an alias
artifact.aliases.remove("latest")
# Completely replace the aliases
artifact.aliases = ["replaced"]
# Persist all artifact modifications
artifact.save()

after = api.artifact(name + ":v1")
check(after.aliases == ["replaced"], "aliases after save: %r" % after.aliases)
check(after.description == "My new description", "description %r" % after.description)
check(after.metadata == {"newKey": "new value"}, "metadata %r" % after.metadata)
check(not api.artifact_exists(name + ":latest"), "latest was removed")
check(api.artifact(name + ":v0").aliases == [], "v0 aliases %r" % api.artifact(name + ":v0").aliases)

# The next log moves `latest` to what it logs.
write("d/rides.csv", b"id,km\n2,1\n")
with wandb.init(entity=ENTITY, project=PROJECT) as run:
    art = wandb.Artifact("bikes", type="dataset")
    art.add_file(os.path.join(os.environ["FLOW_TMP"], "d/rides.csv"))
    run.log_artifact(art)
latest = api.artifact(name + ":latest")
check(latest.version == "v2", "latest after the next log: %s" % latest.version)
check(api.artifact(name + ":v1").aliases == ["replaced"], "v1 keeps only its own alias")
# Versions in W&B's orders: newest first by default and with `-version_index`, oldest first with
# `version_index` or `+version_index`.
order = lambda o: [a.version for a in api.artifacts("dataset", name, order=o)]
check(order(None) == order("-version_index") == ["v2", "v1", "v0"], "newest first")
check(order("version_index") == order("+version_index") == ["v0", "v1", "v2"], "oldest first")
done({"latest": latest.version})
