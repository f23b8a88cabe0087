"""Tags, TTL and collection edits through the SDK. FLOW_MODE picks the part:
- `write`: tags and TTL at log time and through save(), tag filters, version order,
  collection description/tags/type/rename/delete and collection listings;
- `read`: what `write` left, read back (through another server over the same registry);
- `expire`: `short` v0 logged with a 6 s TTL and v1 without, `gone` v0 with a 3 s TTL; 7 s
  later only `short:v1` is readable."""
import os
import time
from datetime import timedelta

import wandb
from wandb.sdk.artifacts.artifact_ttl import ArtifactTTL
from common import ENTITY, PROJECT, check, done, write

MODE = os.environ["FLOW_MODE"]
api = wandb.Api()
proj = "%s/%s" % (ENTITY, PROJECT)


def log(name, body, typ="dataset", tags=None, ttl=None, aliases=None):
    write("%s/data.txt" % name, body)
    with wandb.init(entity=ENTITY, project=PROJECT, job_type="log") as run:
        art = wandb.Artifact(name, type=typ)
        art.add_file(os.path.join(os.environ["FLOW_TMP"], name, "data.txt"))
        if ttl is not None:
            art.ttl = ttl
        run.log_artifact(art, tags=tags, aliases=aliases)
        art.wait()
        return art.version


if MODE == "write":
    check(log("ds", b"zero", tags=["alpha", "needs review"], ttl=timedelta(days=30)) == "v0", "v0")
    check(log("ds", b"one", tags=["beta"]) == "v1", "v1")
    check(log("ds", b"two") == "v2", "v2")
    v0 = api.artifact(proj + "/ds:v0")
    check(sorted(v0.tags) == ["alpha", "needs review"], "tags at log time: %r" % v0.tags)
    check(v0.ttl == timedelta(days=30), "ttl at log time: %r" % v0.ttl)
    check(api.artifact(proj + "/ds:v1").ttl is None, "no ttl on v1")
    # Edits through save(): tags replaced, TTL set, cleared and inherited.
    v0.tags = ["alpha", "gold"]
    v0.ttl = None
    v0.save()
    v0 = api.artifact(proj + "/ds:v0")
    check(sorted(v0.tags) == ["alpha", "gold"], "tags after save: %r" % v0.tags)
    check(v0.ttl is None and not v0._ttl_is_inherited, "ttl none after save")
    v1 = api.artifact(proj + "/ds:v1")
    v1.tags.append("gold")
    v1.ttl = timedelta(days=7)
    v1.save()
    v1 = api.artifact(proj + "/ds:v1")
    check(sorted(v1.tags) == ["beta", "gold"], "appended: %r" % v1.tags)
    check(v1.ttl == timedelta(days=7), "v1 ttl %r" % v1.ttl)
    v1.ttl = ArtifactTTL.INHERIT
    v1.tags.remove("beta")
    v1.save()
    v1 = api.artifact(proj + "/ds:v1")
    check(v1._ttl_is_inherited and v1.ttl is None, "inherit: %r %r" % (v1._ttl_is_inherited, v1.ttl))
    check(v1.tags == ["gold"], "removed: %r" % v1.tags)
    v2 = api.artifact(proj + "/ds:v2")
    v2.ttl = timedelta(days=3)
    v2.save()
    # An invalid tag is refused by the SDK before it reaches the server.
    try:
        v1.tags = ["no/slash"]
        check(False, "invalid tag accepted")
    except ValueError as e:
        check("Invalid tag" in str(e), str(e))
    # Filtering by tag and ordering.
    gold = sorted(a.version for a in api.artifacts("dataset", proj + "/ds", tags="gold"))
    check(gold == ["v0", "v1"], "tag filter: %r" % gold)
    up = [a.version for a in api.artifacts("dataset", proj + "/ds", order="+version_index")]
    down = [a.version for a in api.artifacts("dataset", proj + "/ds", order="-version_index")]
    check(up == ["v0", "v1", "v2"] and down == ["v2", "v1", "v0"], "order %r %r" % (up, down))
    # The collection: description and tags, then a rename and a new type in one save().
    log("other", b"other")
    col = api.artifact_collection("dataset", proj + "/ds")
    col.description = "the ds collection"
    col.tags = ["curated", "v2 data"]
    col.save()
    col = api.artifact_collection("dataset", proj + "/ds")
    check(col.description == "the ds collection", "description %r" % col.description)
    check(sorted(col.tags) == ["curated", "v2 data"], "collection tags %r" % col.tags)
    check(sorted(col.aliases) == ["latest"], "collection aliases %r" % col.aliases)
    names = [c.name for c in api.artifact_collections(proj, "dataset", order="name")]
    check(names == ["ds", "other"], "ordered %r" % names)
    atype = api.artifact_type("dataset", proj)
    names = [c.name for c in atype.collections(filters={"name": "other"})]
    check(names == ["other"], "filtered %r" % names)
    col.name = "ds-renamed"
    col.type = "model"
    col.tags = ["curated"]
    col.save()
    check(not api.artifact_collection_exists(proj + "/ds", "dataset"), "old name gone")
    col = api.artifact_collection("model", proj + "/ds-renamed")
    check(col.description == "the ds collection" and col.tags == ["curated"], "renamed %r" % col.tags)
    vs = sorted(a.version for a in api.artifacts("model", proj + "/ds-renamed"))
    check(vs == ["v0", "v1", "v2"], "versions under the new name %r" % vs)
    check(sorted(api.artifact(proj + "/ds-renamed:v0").tags) == ["alpha", "gold"], "tags moved")
    check(not api.artifact_exists(proj + "/ds:v0"), "old name has no versions")
    # Deleting a collection deletes its versions.
    api.artifact_collection("dataset", proj + "/other").delete()
    check(not api.artifact_exists(proj + "/other:v0"), "other deleted")
    check(not api.artifact_collection_exists(proj + "/other", "dataset"), "other gone")
    done()
elif MODE == "read":
    v0 = api.artifact(proj + "/ds-renamed:v0")
    col = api.artifact_collection("model", proj + "/ds-renamed")
    done({
        "v0_tags": sorted(v0.tags),
        "v0_ttl": None if v0.ttl is None else v0.ttl.total_seconds(),
        "v1_inherited": api.artifact(proj + "/ds-renamed:v1")._ttl_is_inherited,
        "v2_ttl": api.artifact(proj + "/ds-renamed:v2").ttl.total_seconds(),
        "collection_tags": sorted(col.tags),
        "description": col.description,
    })
elif MODE == "expire":
    check(log("gone", b"all of it short-lived", ttl=timedelta(seconds=3)) == "v0", "gone v0")
    check(log("short", b"short-lived", ttl=timedelta(seconds=6), aliases=["keep"]) == "v0", "v0")
    check(api.artifact_exists(proj + "/short:v0"), "v0 there before its TTL")
    check(log("short", b"long-lived") == "v1", "v1")
    time.sleep(7)
    check(not api.artifact_exists(proj + "/short:v0"), "v0 gone after its TTL")
    check(not api.artifact_exists(proj + "/short:keep"), "its alias does not keep it")
    left = [a.version for a in api.artifacts("dataset", proj + "/short")]
    check(left == ["v1"], "listing after expiry %r" % left)
    check(api.artifact(proj + "/short:latest").version == "v1", "latest")
    names = sorted(c.name for c in api.artifact_collections(proj, "dataset"))
    check(names == ["short"], "a collection whose versions all expired is not listed: %r" % names)
    done()
