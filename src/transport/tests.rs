//! Unit tests of the transport: input buffering, packets built in place, padding.

use super::*;
use crate::random::TestRng;

fn transport() -> Transport {
    Transport::new(Preferences::default(), HostKeyCheck::default(), RekeyLimits::default(), Box::new(TestRng::new(5)), Instant::now())
}

#[test]
fn input_space_reuses_consumed_room_and_keeps_unread_bytes() {
    let mut t = transport();
    let space = t.input_space(10);
    assert!(space.len() >= 10);
    space[..6].copy_from_slice(b"SSH-2.");
    t.commit_input(6);
    assert_eq!(t.buffered_input(), 6);
    t.in_start = 4; // as if four bytes were parsed
    let cap = t.inbuf.len();
    let space = t.input_space(cap); // not enough room at the end: unread bytes move to the front
    assert!(space.len() >= cap);
    assert_eq!(t.in_start, 0);
    assert_eq!(t.inbuf.get(..2), Some(&b"2."[..]));
    assert_eq!(t.buffered_input(), 2);
    t.commit_input(usize::MAX); // a lying count cannot run past the buffer
    assert_eq!(t.in_end, t.inbuf.len());
}

#[test]
fn input_arriving_in_any_split_gives_the_same_packets() {
    let mut payloads = Vec::new();
    let mut wire = Vec::new();
    for len in [1usize, 5, 40, 1000, 33000] {
        let p: Vec<u8> = (0..len).map(|i| 94u8.wrapping_add(i as u8)).collect();
        let mut p = p;
        p[0] = 94;
        Sealer::plaintext().seal(0, &p, &mut TestRng::new(1), &mut wire);
        payloads.push(p);
    }
    for split in [1usize, 7, 4096, 65536] {
        let mut t = transport();
        t.ident = None; // no version line in this test
        t.keys_in_place = true;
        t.service = Service::Connected;
        let mut got = Vec::new();
        for chunk in wire.chunks(split) {
            t.receive(chunk);
            while let Some(Event::Payload { range, .. }) = t.poll(Instant::now()).unwrap() {
                let buf = t.lend_input();
                got.push(buf[range].to_vec());
                t.return_input(buf);
            }
        }
        assert_eq!(got, payloads, "split {split}");
        assert_eq!(t.buffered_input(), 0);
    }
}

#[test]
fn channel_data_built_in_place_equals_the_encoded_message() {
    let mut a = transport();
    let mut b = transport();
    for t in [&mut a, &mut b] {
        t.out.clear();
        t.out_start = 0;
        t.kex = KexState::Idle;
        t.session_id = Some(vec![1; 32]); // as after the first key exchange
        assert!(t.can_send());
    }
    let data: Vec<u8> = (0..40000u32).map(|i| i as u8).collect();
    a.send_channel_data(7, &data);
    b.send(&Msg::ChannelData { recipient: 7, data: &data }.encode());
    assert!(a.output().len() > data.len() + 13);
    assert_eq!(a.output(), b.output());
    assert_eq!((a.tx_seq, a.since_kex_bytes), (b.tx_seq, b.since_kex_bytes));
}

#[test]
fn channel_data_filled_in_place_equals_the_copied_packet() {
    let mut a = transport();
    let mut b = transport();
    for t in [&mut a, &mut b] {
        t.out.clear();
        t.out_start = 0;
        t.kex = KexState::Idle;
        t.session_id = Some(vec![1; 32]);
    }
    let data: Vec<u8> = (0..20000u32).map(|i| (i * 7) as u8).collect();
    // The filler is offered more room than it uses: the header says what it wrote.
    let n = a.send_channel_data_with(3, 32768, |buf| {
        assert_eq!(buf.len(), 32768);
        buf[..data.len()].copy_from_slice(&data);
        data.len()
    });
    assert_eq!(n, data.len());
    b.send_channel_data(3, &data);
    assert_eq!(a.output(), b.output());
    assert_eq!((a.tx_seq, a.since_kex_bytes), (b.tx_seq, b.since_kex_bytes));
    // Nothing written: no packet, the output is as it was.
    let before = a.output().to_vec();
    assert_eq!(a.send_channel_data_with(3, 100, |_| 0), 0);
    assert_eq!((a.output(), a.tx_seq), (&before[..], b.tx_seq));
    // A filler that claims more than its room sends only the room.
    assert_eq!(a.send_channel_data_with(3, 10, |buf| buf.len() + 5), 10);
}

#[test]
fn channel_data_filled_during_a_key_exchange_is_queued_not_sealed() {
    let mut t = transport();
    t.session_id = Some(vec![1; 32]);
    t.kex = KexState::SentInit { ours: Vec::new() };
    assert!(!t.can_send());
    let out_before = t.output().len();
    let n = t.send_channel_data_with(4, 50, |buf| {
        buf[..5].copy_from_slice(b"hello");
        5
    });
    assert_eq!(n, 5);
    assert_eq!(t.output().len(), out_before, "nothing sealed while the exchange runs");
    let q = t.queued_payloads();
    assert_eq!(q, vec![Msg::ChannelData { recipient: 4, data: b"hello" }.encode()]);
}

#[test]
fn read_space_reads_the_rest_of_a_packet_instead_of_moving_it() {
    let mut wire = Vec::new();
    let mut payloads = Vec::new();
    for i in 0..40u8 {
        let mut p = vec![i; 30000];
        p[0] = 94;
        Sealer::plaintext().seal(0, &p, &mut TestRng::new(1), &mut wire);
        payloads.push(p);
    }
    let mut t = transport();
    t.ident = None;
    t.keys_in_place = true;
    t.service = Service::Connected;
    let (mut at, mut got, mut max_len) = (0usize, Vec::new(), 0usize);
    while at < wire.len() {
        let before = (t.in_start, t.in_end, t.inbuf.len());
        let space = t.read_space(65536);
        assert!(!space.is_empty() && space.len() <= 65536);
        let n = space.len().min(wire.len() - at);
        space[..n].copy_from_slice(&wire[at..at + n]);
        // A partial packet is never moved: it stays where it was, or the buffer was empty.
        assert!(t.in_start == before.0 || before.0 == before.1, "moved: {before:?} -> {}", t.in_start);
        t.commit_input(n);
        at += n;
        while let Some(Event::Payload { range, .. }) = t.poll(Instant::now()).unwrap() {
            let buf = t.lend_input();
            got.push(buf[range].to_vec());
            t.return_input(buf);
        }
        max_len = max_len.max(t.inbuf.len());
    }
    assert_eq!(got, payloads);
    assert!(max_len <= 2 * 65536 + READ_TO_END_SLACK, "{max_len}");
}

#[test]
fn padding_pool_hands_out_fresh_bytes_and_refills() {
    let mut pool = PadPool::default();
    let mut rng = TestRng::new(9);
    let mut seen = Vec::new();
    for len in [4usize, 19, 255, 256, 300, 8] {
        let mut buf = vec![0u8; len];
        PadSource { pool: &mut pool, rng: &mut rng }.fill(&mut buf);
        assert!(buf.iter().any(|&x| x != 0), "len {len}");
        seen.push(buf);
    }
    // No byte string handed out twice.
    assert_ne!(seen[0], seen[5]);
    assert_ne!(seen[1][..8], seen[2][..8]);
}
