"""Links: versions linked into portfolios from a run and with `Artifact.link`, read back through
the portfolio (aliases, bytes, source_*, linked_artifacts), unlinked, and the model helpers
(`log_model`, `use_model`, `link_model`), as W&B's own link and model-workflow tests do."""
import os
import wandb
from common import ENTITY, PROJECT, check, done, path, tree, write

E_P = "%s/%s" % (ENTITY, PROJECT)
write("w0/model.bin", os.urandom(5000))
write("w0/cfg.txt", b"layers: 3\n")
write("w1/model.bin", os.urandom(6000))

with wandb.init(entity=ENTITY, project=PROJECT, job_type="train") as run:
    art = wandb.Artifact("weights", type="model")
    art.add_dir(path("w0"))
    # A draft linked from the run is logged first.
    link = run.link_artifact(art, "portfolio", aliases=["prod"])
    check(not art.is_draft() and not link.is_draft(), "drafts after link")
    check(link.is_link and not art.is_link, "is_link %r %r" % (link.is_link, art.is_link))
    check(link.id == art.id, "a link is the same artifact: %s != %s" % (link.id, art.id))
    check(link.qualified_name == E_P + "/portfolio:v0", "link name %s" % link.qualified_name)
    check(link.source_qualified_name == art.qualified_name, "source %s" % link.source_qualified_name)
    check(link.version == "v0" and link.source_version == "v0", "versions %s" % link.version)
    check("prod" in link.aliases, "link aliases %r" % link.aliases)
    other = run.link_artifact(art, "other/portfolio2")
    check(other.entity == ENTITY and other.project == "other", "inferred %s" % other.qualified_name)
    # Linking the same version again makes no second link; the new alias joins it.
    again = art.link(E_P + "/portfolio", aliases=["best"])
    check(again.version == "v0", "re-link made %s" % again.version)
    check({"prod", "best"} <= set(again.aliases), "re-link aliases %r" % again.aliases)
    art1 = wandb.Artifact("weights", type="model")
    art1.add_dir(path("w1"))
    run.log_artifact(art1)
    art1.wait()
    link1 = art1.link(E_P + "/portfolio")
    check(link1.version == "v1" and link1.source_version == "v1", "second link %s" % link1.version)
    used = run.use_artifact(E_P + "/portfolio:prod")
    check(used.is_link and used.version == "v0", "used %s %r" % (used.version, used.is_link))
    check(tree(used.download(root=path("used"))) == tree(path("w0")), "bytes through the link")

api = wandb.Api()
latest = api.artifact(E_P + "/portfolio:latest")
check(latest.version == "v1" and latest.is_link, "latest is %s" % latest.version)
check(latest.source_name == "weights:v1", "source_name %s" % latest.source_name)
check(latest.source_entity == ENTITY and latest.source_project == PROJECT, "source_*")
check(latest.source_artifact.qualified_name == E_P + "/weights:v1", "source_artifact")
prod = api.artifact(E_P + "/portfolio:prod")
check(prod.version == "v0" and set(prod.aliases) >= {"prod", "best"}, "prod %r" % prod.aliases)
check(prod.digest == art.digest, "digest through the link")
check(tree(prod.download(root=path("api-dl"))) == tree(path("w0")), "api bytes through the link")
check(sorted(f.name for f in prod.files()) == ["cfg.txt", "model.bin"], "files()")
source = api.artifact(E_P + "/weights:v0")
names = sorted(l.qualified_name for l in source.linked_artifacts)
want = sorted([E_P + "/portfolio:v0", ENTITY + "/other/portfolio2:v0"])
check(names == want, "linked_artifacts %r" % names)
check(all(l.is_link and l.linked_artifacts == [] for l in source.linked_artifacts), "links' links")
col = api.artifact_collection("model", E_P + "/portfolio")
check(not col.is_sequence(), "a portfolio is no sequence")
check(api.artifact_collection("model", E_P + "/weights").is_sequence(), "a sequence is one")
members = list(col.artifacts())
check(sorted(m.version for m in members) == ["v0", "v1"], "members %r" % [m.version for m in members])
check(all(m.is_link for m in members), "members are links")
by_version = {m.version: sorted(m.aliases) for m in members}
check(by_version == {"v0": ["best", "prod"], "v1": ["latest"]}, "members' aliases %r" % by_version)
check(sorted(source.aliases) == [], "the source's own aliases %r" % source.aliases)
kinds = {c.name: c.is_sequence() for c in api.artifact_collections(E_P, "model")}
check(kinds == {"portfolio": False, "weights": True}, "collections %r" % kinds)

# Unlink removes only the link.
prod.unlink()
check(not api.artifact_exists(E_P + "/portfolio:v0"), "the unlinked v0 is gone")
check(api.artifact_exists(E_P + "/weights:v0"), "the source stays")
check(api.artifact_exists(E_P + "/portfolio:v1"), "the other link stays")
try:
    source.unlink()
    check(False, "unlinking a source must fail")
except ValueError as e:
    check("Artifact.delete" in str(e), "unlink error %s" % e)
check(len(api.artifact(E_P + "/weights:v0").linked_artifacts) == 1, "one link left")

# Deleting a source removes its links.
write("t/t.txt", b"temporary\n")
with wandb.init(entity=ENTITY, project=PROJECT, job_type="tmp") as run:
    tmp = wandb.Artifact("temp", type="model")
    tmp.add_dir(path("t"))
    run.link_artifact(tmp, "tportfolio")
check(api.artifact_exists(E_P + "/tportfolio:v0"), "temp linked")
api.artifact(E_P + "/temp:v0").delete(delete_aliases=True)
check(not api.artifact_exists(E_P + "/tportfolio:v0"), "a deleted source's link is gone")

# The model helpers.
write("m/boom.txt", b"testing")
with wandb.init(entity=ENTITY, project=PROJECT, job_type="models") as run:
    run.log_model(path("m/boom.txt"), "test-model")
with wandb.init(entity=ENTITY, project=PROJECT, job_type="models") as run:
    got = run.use_model("test-model:v0")
    check(open(got, "rb").read() == b"testing", "use_model bytes")
    linked = run.link_model(path("m/boom.txt"), "test_portfolio", "test_model", aliases=["staging"])
    check(linked.is_link and linked.project == "model-registry", "link_model %s" % linked.qualified_name)
with wandb.init(entity=ENTITY, project=PROJECT, job_type="models") as run:
    got = run.use_model("model-registry/test_portfolio:v0")
    check(open(got, "rb").read() == b"testing", "use_model through the registry link")
staged = api.artifact(ENTITY + "/model-registry/test_portfolio:staging")
check(staged.source_name == "test_model:v0", "link_model source %s" % staged.source_name)

# Deleting a whole portfolio leaves what it linked.
api.artifact(E_P + "/weights:v0").link(E_P + "/dportfolio")
check(api.artifact_exists(E_P + "/dportfolio:v0"), "linked for deletion")
api.artifact_collection("model", E_P + "/dportfolio").delete()
check(not api.artifact_exists(E_P + "/dportfolio:v0"), "portfolio deleted")
check(api.artifact_exists(E_P + "/weights:v0"), "its source stays")

done({"portfolio_digest": latest.digest, "w1": tree(path("w1"))})
