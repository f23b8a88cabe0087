//! How to use a version from elsewhere, shown on its page: the `wandb` SDK against this server,
//! `artfs get`, `artfs mount` of the version alone, and its path inside a mount of everything.

use super::html::esc;
use crate::names::CollectionPath;

/// The snippets for `c:vN` of a server reachable at `base` (its public URL).
pub fn usage(base: &str, c: &CollectionPath, version: u32) -> String {
    let full = format!("{c}:v{version}");
    let env = format!("export WANDB_BASE_URL={base} WANDB_API_KEY=<your key>");
    let wandb = format!(
        "import wandb\nwith wandb.init(entity=\"{}\", project=\"{}\") as run:\n    \
         path = run.use_artifact(\"{full}\").download()",
        c.entity, c.project
    );
    let get = format!("{env}\nartfs get {full} --root ./{}", c.name);
    let mount = format!("{env}\nartfs mount {full} /mnt/{}", c.name);
    let whole = format!("artfs mount /mnt/artfs\nls /mnt/artfs/{full}/");
    let block = |title: &str, text: &str| {
        format!(
            "<div class=\"snippet\"><h3>{}</h3><pre><code>{}</code></pre></div>",
            esc(title),
            esc(text)
        )
    };
    format!(
        "{}{}{}{}",
        block("wandb (Python)", &format!("{env}\n\n{wandb}")),
        block("artfs get", &get),
        block("artfs mount (this version)", &mount),
        block("inside a mount of the whole registry", &whole),
    )
}
