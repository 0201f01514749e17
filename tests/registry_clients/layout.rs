//! On-disk layout compatibility through the real binaries over TLS: a root written by
//! `docker-registry` (distribution 2.8) is served by `regkit serve` after the reference stops,
//! and the reverse; skopeo pulls byte-identical images from the other server each time.

use super::{Kind, Target, layout_blob, layout_blobs, layout_manifest, secrets, tools_present};
use crate::harness::{Workspace, image, require_tool};

#[test]
fn clients_pull_from_either_server_what_the_other_wrote_on_the_same_root() {
    if !tools_present(&[]) || !require_tool("docker-registry") {
        return;
    }
    let ws = Workspace::new();
    let s = secrets(&ws);
    let oci = image::build(&ws);
    let src = format!("oci:{}:v1", oci.display());
    let digest = layout_manifest(&oci);

    for (writer, reader, root) in
        [(Kind::Reference, Kind::Regkit, "root-a"), (Kind::Regkit, Kind::Reference, "root-b")]
    {
        let v2s2 = {
            let w = Target::start(&ws, &s, writer, root);
            let r = w.push(&ws, &src, "compat/img:v1", &[]);
            assert_eq!(r.code, Some(0), "{r}\n{}", w.log());
            let r = w.push(&ws, &src, "compat/img:v2s2", &["--format", "v2s2"]);
            assert_eq!(r.code, Some(0), "{r}\n{}", w.log());
            w.skopeo(&ws, "inspect", &["--raw"], "compat/img:v2s2").raw_stdout
            // The writer stops here, before the reader starts on its root.
        };
        let r = Target::start(&ws, &s, reader, root);
        let what = format!("{writer:?} wrote, {reader:?} serves");
        let out = ws.join(format!("{root}-pulled"));
        let pull = r.pull(&ws, "compat/img:v1", &format!("oci:{}:v1", out.display()), &[]);
        assert_eq!(pull.code, Some(0), "{what}: {pull}\n{}", r.log());
        assert_eq!(layout_manifest(&out), digest, "{what}");
        assert_eq!(layout_blobs(&out), layout_blobs(&oci), "{what}: blobs differ");
        let raw = r.skopeo(&ws, "inspect", &["--raw"], "compat/img:v1");
        assert_eq!(raw.raw_stdout, layout_blob(&oci, &digest), "{what}");
        assert_eq!(r.skopeo(&ws, "inspect", &["--raw"], "compat/img:v2s2").raw_stdout, v2s2);
        assert_eq!(r.tags(&ws, "compat/img"), ["v1", "v2s2"], "{what}");
        let catalog = r.curl(&ws, "GET", "/v2/_catalog", &[]);
        catalog.expect(200, &what);
        assert_eq!(catalog.json()["repositories"], serde_json::json!(["compat/img"]), "{what}");
    }
}
