//! Who is on the other end of the control socket, from the kernel (SO_PEERCRED). Calls that change something
//! (download, cancel, silence, test alert) are served to root, the daemon's own user, and members of its group
//! only; the socket's 0660 mode is the first gate, this is the second (a socket made world-writable by mistake
//! still lets nobody else change anything).

use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Status};

/// The peer's credentials as the kernel reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

fn peer<T>(request: &Request<T>) -> Option<Peer> {
    let cred = request.extensions().get::<UdsConnectInfo>()?.peer_cred?;
    Some(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
    })
}

/// The supplementary groups of a process, from `/proc/<pid>/status`.
fn groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Groups:"))
                .map(|g| g.split_whitespace().filter_map(|n| n.parse().ok()).collect())
        })
        .unwrap_or_default()
}

/// Root, the daemon's user, or its group (primary or supplementary).
pub fn allowed(peer: Peer, daemon_uid: u32, daemon_gid: u32, supplementary: &[u32]) -> bool {
    peer.uid == 0 || peer.uid == daemon_uid || peer.gid == daemon_gid || supplementary.contains(&daemon_gid)
}

/// `doradurctl uid=0 pid=1234`, or `doradurctl` when the kernel did not say.
pub fn describe<T>(request: &Request<T>) -> String {
    match peer(request) {
        Some(Peer {
            uid, pid: Some(pid), ..
        }) => format!("doradurctl uid={uid} pid={pid}"),
        Some(Peer { uid, .. }) => format!("doradurctl uid={uid}"),
        None => "doradurctl".to_string(),
    }
}

/// Lets a changing call through, or refuses it with a sentence that says who may make it.
pub fn authorize<T>(request: &Request<T>, what: &str) -> Result<(), Status> {
    let Some(p) = peer(request) else {
        return Err(Status::permission_denied(format!(
            "{what} refused: the caller could not be identified"
        )));
    };
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    let supplementary = p.pid.map(groups).unwrap_or_default();
    if allowed(p, uid, gid, &supplementary) {
        return Ok(());
    }
    tracing::warn!(uid = p.uid, pid = p.pid, what, "control call refused to a foreign user");
    Err(Status::permission_denied(format!(
        "{what} needs root, the daemon's user (uid {uid}) or a member of its group (gid {gid}); uid {} is none of \
         them",
        p.uid
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_the_daemons_user_and_its_group_are_allowed_and_no_one_else() {
        let p = |uid, gid| Peer { uid, gid, pid: None };
        assert!(allowed(p(0, 0), 999, 999, &[]));
        assert!(allowed(p(999, 100), 999, 999, &[]));
        assert!(allowed(p(1000, 999), 999, 999, &[]));
        assert!(allowed(p(1000, 1000), 999, 999, &[27, 999]), "a supplementary member");
        assert!(!allowed(p(1000, 1000), 999, 999, &[27, 100]));
        assert!(!allowed(p(65534, 65534), 999, 999, &[]));
    }

    #[test]
    fn a_process_groups_come_from_proc() {
        let mine = groups(std::process::id() as i32);
        let expected: Vec<u32> = nix::unistd::getgroups().unwrap().iter().map(|g| g.as_raw()).collect();
        assert_eq!(mine, expected);
    }
}
