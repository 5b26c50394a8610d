//! Who is on the other end of the control socket, from the kernel (SO_PEERCRED), for the records of what a
//! `doradurctl` call changed.

use tonic::Request;
use tonic::transport::server::UdsConnectInfo;

/// `doradurctl uid=0 pid=1234`, or `doradurctl` when the kernel did not say.
pub fn describe<T>(request: &Request<T>) -> String {
    match request.extensions().get::<UdsConnectInfo>().and_then(|i| i.peer_cred) {
        Some(cred) => match cred.pid() {
            Some(pid) => format!("doradurctl uid={} pid={pid}", cred.uid()),
            None => format!("doradurctl uid={}", cred.uid()),
        },
        None => "doradurctl".to_string(),
    }
}
