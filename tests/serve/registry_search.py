"""Registries searched as W&B's registry tests search them: versions logged in team `vision`
linked into collections of two registries of org `acme`, then `api.registries(...)`
`.collections()` and `.versions()` listed unordered, ordered by registry, by collection and
both, page by page; every listing goes into the result."""
import itertools

import wandb
from common import check, done

ORG = "acme"
api = wandb.Api()
with wandb.init(entity="vision", project="search") as run:
    arts = [run.log_artifact(wandb.Artifact(f"search-art-{i}", type="test-type")) for i in range(4)]
for r in range(2):
    reg = api.create_registry(f"search-reg-{r}", "organization", organization=ORG)
    for c in range(2):
        arts[r * 2 + c].link(f"{ORG}/{reg.full_name}/coll-{c}")


def regs(order=None):
    return api.registries(organization=ORG, filter={"name": {"$contains": "search-reg-"}}, order=order)


def colls(it):
    return [f"{c.project.removeprefix('wandb-registry-')}/{c.name}" for c in itertools.islice(it, 9)]


def vers(it):
    return [f"{v.project.removeprefix('wandb-registry-')}/{v.name}" for v in itertools.islice(it, 9)]


out = {
    "collections_by_name": colls(regs().collections(order="name")),
    "collections_by_name_desc": colls(regs().collections(order="-name")),
    "collections_by_registry_then_name": colls(regs("name").collections(order="name", per_page=1)),
    "collections_by_registry_desc_then_name": colls(regs("-name").collections(order="name")),
    "versions_by_registry": vers(regs("name").versions(per_page=1)),
    "versions_by_registry_desc": vers(regs("-name").versions()),
    "versions_by_collection_desc": vers(regs().collections(order="-name").versions()),
    "versions_by_registry_then_collection": vers(
        regs("name").collections(order="name", per_page=1).versions(per_page=1)
    ),
    "one_registry_by_name_desc": [c.name for c in api.registry("search-reg-1", ORG).collections(order="-name")],
}
# A cursor from one page resumes the unordered listing where it stopped.
paged = regs().collections(per_page=1)
first = next(paged).name
rest = [c.name for c in regs().collections(per_page=1, start=paged.cursor)]
check(sorted([first, *rest]) == ["coll-0", "coll-0", "coll-1", "coll-1"], "resumed after %r: %r" % (first, rest))
done(out)
