//! The C extension `sshbridge_set_timeouts`: what it changes, what it refuses.
use std::time::Duration;
use sshbridge::ffi::{drop_in_settings, sshbridge_set_timeouts, DropInSettings};

#[test]
fn set_timeouts_changes_only_what_it_is_given_and_refuses_nonsense() {
    assert_eq!(drop_in_settings(), DropInSettings::DEFAULT);
    // Dead-peer detection is on by default: 15 s of silence, 3 unanswered keepalives.
    assert_eq!(DropInSettings::DEFAULT.keepalive_interval, Some(Duration::from_secs(15)));
    assert_eq!(DropInSettings::DEFAULT.keepalive_max, 3);
    // Keepalive on, everything else unchanged.
    assert_eq!(sshbridge_set_timeouts(-1, -1, -1, 1500, 4), 1);
    let s = drop_in_settings();
    assert_eq!(s.keepalive_interval, Some(Duration::from_millis(1500)));
    assert_eq!(s.keepalive_max, 4);
    assert_eq!(s.connect_timeout, DropInSettings::DEFAULT.connect_timeout);
    assert_eq!(s.close_wait_timeout, DropInSettings::DEFAULT.close_wait_timeout);
    // All of them.
    assert_eq!(sshbridge_set_timeouts(2000, 5000, 7000, 0, -1), 1);
    let s = drop_in_settings();
    assert_eq!(s.connect_timeout, Duration::from_millis(2000));
    assert_eq!(s.handshake_timeout, Duration::from_millis(5000));
    assert_eq!(s.auth_timeout, Duration::from_millis(5000));
    assert_eq!(s.close_wait_timeout, Duration::from_millis(7000));
    assert_eq!(s.keepalive_interval, None);
    // Refused: zero timeouts, keepalive with max 0; nothing changes.
    for bad in [(0, -1, -1, -1, -1), (-1, 0, -1, -1, -1), (-1, -1, 0, -1, -1), (-1, -1, -1, 100, 0)] {
        assert_eq!(sshbridge_set_timeouts(bad.0, bad.1, bad.2, bad.3, bad.4), 0, "{bad:?}");
        assert_eq!(drop_in_settings(), s);
    }
    sshbridge::ffi::set_drop_in_settings(DropInSettings::DEFAULT);
}
