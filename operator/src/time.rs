//! Unix seconds as Kubernetes times, for the status (`lastSyncTime`, condition
//! transitions) and the Lease (`renewTime`), written by both the controller and the
//! leader election.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use stepup_core::clock::UnixSeconds;

/// `now` as a Kubernetes time (the epoch if out of range, which no real clock gives).
pub fn time_of(now: UnixSeconds) -> Time {
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    Time(
        k8s_openapi::jiff::Timestamp::from_second(secs)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}
