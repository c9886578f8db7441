//! The documentation stays true: the ZimRoom reference (docs/zimroom.md) covers every CRD field, its reasons
//! table every reason the code uses, the argocd-cm snippet (docs/argocd.md) is exactly the tested health check,
//! and every relative link of README.md and docs/*.md leads to a file and heading that exist. (The metrics table
//! of docs/monitoring.md is checked by tests/integration/monitoring.rs and against a live /metrics in tests/e2e; the
//! quick start's shown output by tests/integration/cli.rs.)

use crate::support::markdown;

use markdown::{anchor, anchors, broken_links, links, pages, read, read_checkout};

/// The ZimRoom reference: its field table, conditions and reasons.
fn reference() -> String {
    read("docs/zimroom.md")
}

/// Every spec and status field of the CRD has a row in the reference table.
#[test]
fn reference_covers_every_crd_field() {
    let page = reference();
    let crd = serde_json::to_value(zim_operator::crd::crd()).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
    for part in ["spec", "status"] {
        for field in schema[part]["properties"].as_object().unwrap().keys() {
            let row = format!("| `{part}.{field}` |");
            assert!(page.contains(&row), "docs/zimroom.md has no reference row for {part}.{field}");
        }
    }
}

/// Every condition reason in `crd::reason` appears in the reference's conditions table.
#[test]
fn reasons_table_covers_every_reason() {
    let page = reference();
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/crd.rs")).unwrap();
    let reasons: Vec<&str> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|l| l.split_once(": &str = \""))
        .map(|(_, v)| v.trim_end_matches("\";"))
        .filter(|v| v.chars().next().is_some_and(char::is_uppercase) && !v.contains('/'))
        .collect();
    assert!(reasons.len() >= 14, "{reasons:?}");
    for r in reasons {
        assert!(
            page.contains(&format!("`{r}`")) || page.contains(&format!("| {r} |")),
            "docs/zimroom.md lacks {r}"
        );
    }
}

/// The argocd-cm snippets of docs/argocd.md are the tested health checks, indented for the ConfigMap: the
/// ZimRoom's, the ZimRoomSet's, and the Application's for an app of apps.
#[test]
fn argocd_snippet_is_the_tested_script() {
    let page = read("docs/argocd.md");
    for (script, key) in [
        ("zim.zego.im/ZimRoom", "zim.zego.im_ZimRoom"),
        ("zim.zego.im/ZimRoomSet", "zim.zego.im_ZimRoomSet"),
        ("argoproj.io/Application", "argoproj.io_Application"),
    ] {
        let lua = read(&format!("argocd/resource_customizations/{script}/health.lua"));
        let indented: String = lua
            .lines()
            .map(|l| if l.is_empty() { "\n".to_string() } else { format!("      {l}\n") })
            .collect();
        let marker = format!("resource.customizations.health.{key}: |\n");
        let start = page.find(&marker).unwrap_or_else(|| panic!("docs/argocd.md has no {key} snippet"))
            + marker.len();
        let end = start + page[start..].find("```").unwrap();
        assert_eq!(
            &page[start..end],
            indented,
            "docs/argocd.md's {key} snippet differs from {script}/health.lua"
        );
    }
}

/// The reference's field table agrees with the CRD's schema and descriptions: each row's type is the field's type,
/// every enum value and every default the schema declares is named in the row, and so are the byte and count
/// limits the description states.
#[test]
fn reference_rows_agree_with_the_crd() {
    let page = reference();
    let crd = serde_json::to_value(zim_operator::crd::crd()).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
    for part in ["spec", "status"] {
        for (field, prop) in schema[part]["properties"].as_object().unwrap() {
            let prefix = format!("| `{part}.{field}` | ");
            let row = page.lines().find(|l| l.starts_with(&prefix)).expect("a row (see the test above)");
            let cells: Vec<&str> = row.split(" | ").collect();
            let want = match prop["type"].as_str().unwrap_or_default() {
                "array" => "list",
                other => other,
            };
            assert_eq!(cells[1], want, "docs/zimroom.md: type of {part}.{field}");
            for value in prop["enum"].as_array().into_iter().flatten() {
                let v = value.as_str().unwrap();
                assert!(
                    row.contains(&format!("`{v}`")),
                    "docs/zimroom.md: row of {part}.{field} lacks the value {v}"
                );
            }
            if let Some(default) = prop.get("default").filter(|d| d.is_number()) {
                assert!(
                    row.contains(&default.to_string()),
                    "docs/zimroom.md: row of {part}.{field} lacks its default {default}"
                );
            }
            for limit in ["maxLength", "maxItems", "maximum"] {
                if let Some(n) = prop[limit].as_f64() {
                    let n = n as u64;
                    let description = prop["description"].as_str().unwrap_or_default();
                    if description.contains(&n.to_string()) {
                        assert!(
                            row.contains(&n.to_string()),
                            "docs/zimroom.md: row of {part}.{field} lacks the limit {n}"
                        );
                    }
                }
            }
        }
    }
}

/// Every relative link of README.md and docs/*.md leads to a file that exists and, with `#anchor`, to a heading
/// of the page it points into (GitHub's anchors).
#[test]
fn every_relative_link_resolves() {
    let mut problems = Vec::new();
    let mut relative = 0;
    for page in pages() {
        let text = read(&page);
        relative += links(&text).iter().filter(|(_, t)| !t.contains("://")).count();
        problems.extend(broken_links(&page, &text, read_checkout));
    }
    assert!(relative >= 40, "the pages link each other ({relative} relative links found)");
    assert!(problems.is_empty(), "broken links:\n{}", problems.join("\n"));
}

/// The README links every page under docs/ (its "Documentation" list).
#[test]
fn readme_links_every_page() {
    let readme = read("README.md");
    let linked: Vec<String> = links(&readme).into_iter().map(|(_, t)| t).collect();
    for page in pages().into_iter().filter(|p| p.starts_with("docs/")) {
        assert!(linked.contains(&page), "README.md does not link {page}");
    }
}

/// The link check finds what is broken: a missing file, a missing heading in another page and in the same page,
/// a path out of the checkout; and it accepts what resolves, ignoring links inside code.
#[test]
fn the_link_check_catches_broken_links() {
    let files = |p: &std::path::Path| match p.to_str().unwrap() {
        "README.md" => Some("# Title\n\n## Install on a cluster\n\n## Notes\n\n## Notes\n".to_owned()),
        "docs/a.md" => Some(String::new()),
        "src" => Some(String::new()),
        _ => None,
    };
    let page = "Good: [install](../README.md#install-on-a-cluster), [again](../README.md#notes-1), [a](a.md),\n\
                [the sources](../src), [own](#here), [web](https://example.com/x#y), `[code](missing.md)`.\n\n\
                ```sh\n[fenced](missing.md)\n```\n\n\
                ## Here\n\n\
                Bad: [gone](gone.md), [no heading](../README.md#uninstall), [own](#there), [out](../../x.md), \
                [multi\nline](a.md#nothing).\n";
    let problems = broken_links("docs/b.md", page, files);
    let targets: Vec<&str> = problems.iter().map(|p| p.split(": ").nth(1).unwrap()).collect();
    assert_eq!(
        targets,
        ["gone.md", "../README.md#uninstall", "#there", "../../x.md", "a.md#nothing"],
        "{problems:#?}"
    );
    assert_eq!(anchor(" Refused at `kubectl apply`"), "refused-at-kubectl-apply");
    assert_eq!(
        anchor("Multi-tenant clusters: what each namespace may do"),
        "multi-tenant-clusters-what-each-namespace-may-do"
    );
    assert!(anchors("## Notes\n## Notes\n").contains("notes-1"));
}

/// The justfile (the everyday commands) names only scripts and cargo targets that exist, and names every check
/// script: a script renamed or removed fails here, not the day someone runs the recipe.
#[test]
fn justfile_names_what_exists() {
    use std::os::unix::fs::PermissionsExt;
    let root = env!("CARGO_MANIFEST_DIR");
    let justfile = std::fs::read_to_string(format!("{root}/justfile")).unwrap();
    let cargo_toml = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let mut recipes = 0;
    let mut scripts = Vec::new();
    let mut header = "";
    for line in justfile.lines() {
        if !line.starts_with([' ', '#']) && line.trim_end().ends_with(':') {
            header = line; // `e2e tier="e2e" *filter:`
            recipes += 1;
        }
        if !line.starts_with("    ") {
            continue;
        }
        let words: Vec<&str> = line
            .split(|c: char| !(c.is_alphanumeric() || "/._-{}".contains(c)))
            .filter(|w| !w.is_empty())
            .collect();
        scripts.extend(words.iter().filter(|w| w.ends_with(".sh")).map(|w| w.to_string()));
        for pair in words.windows(2) {
            let kind = match pair[0] {
                "--test" => "test",
                "--bench" => "bench",
                _ => continue,
            };
            // `{{tier}}`: the parameter's default in the recipe's header.
            let name = match pair[1].strip_prefix("{{").and_then(|p| p.strip_suffix("}}")) {
                Some(param) => header
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{param}=\"")))
                    .map(|d| d.trim_end_matches('"'))
                    .unwrap_or_else(|| panic!("justfile: {param} has no default in {header:?}")),
                None => pair[1],
            };
            let declared = cargo_toml.contains(&format!("[[{kind}]]\nname = \"{name}\"\n"));
            let dir = std::path::Path::new(root).join(format!("{kind}s"));
            let file = dir.join(format!("{name}.rs")).exists() || dir.join(name).join("main.rs").exists();
            assert!(declared || file, "justfile: cargo --{kind} {name} names no target");
        }
    }
    assert!(recipes >= 15, "justfile: {recipes} recipes");
    for script in &scripts {
        let path = std::path::Path::new(root).join(script);
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode());
        assert!(mode.is_ok_and(|m| m & 0o111 != 0), "justfile: {script} is not an executable file");
    }
    let mut checks = vec!["scripts/test.sh".to_owned(), "argocd/test.sh".to_owned()];
    for entry in std::fs::read_dir(format!("{root}/scripts")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with("-check.sh") {
            checks.push(format!("scripts/{name}"));
        }
    }
    for check in checks {
        assert!(scripts.contains(&check), "justfile: no recipe runs {check}");
    }
}
