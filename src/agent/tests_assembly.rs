//! Sans-IO tests of reassembly bookkeeping: a file whose manifest arrives
//! before its chunks is assembled exactly once, when its last missing chunk
//! arrives, with each arrival counted rather than the file re-checked; a
//! file whose write failed is asked for again after a delay.

use super::tests::{Net, T0, agent, data, submit};
use super::*;
use crate::content::{Chunker, ManifestBuilder};

/// Submissions for the chunks of `content` (1 KiB chunks) and its manifest.
fn file_items(content: &[u8]) -> (Vec<Submission>, Submission, Manifest) {
    let mut builder = ManifestBuilder::new("early.bin", 1024);
    let mut chunks = Vec::new();
    for chunk in Chunker::new(content, 1024).unwrap() {
        let chunk = chunk.unwrap();
        builder.push(&chunk);
        let cid = Some(chunk.cid.to_bytes());
        chunks.push(data("dtn://c/files", &chunk.data, None, cid));
    }
    let m = builder.finish();
    let manifest = data("dtn://c/files", &m.encode(), None, Some(m.cid().to_bytes()));
    (chunks, manifest, m)
}

fn assembled(net: &Net) -> Vec<Manifest> {
    net.delivered
        .iter()
        .filter_map(|a| match a {
            Action::AssembleFile { manifest, .. } => Some(manifest.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_manifest_that_arrives_first_is_assembled_once_after_its_last_chunk() {
    let (mut a, mut c) = (agent("a"), agent("c"));
    // 6 chunks, of which chunks 1 and 4 are equal (one CID twice).
    let mut content: Vec<u8> = (0..6 * 1024u32).map(|i| (i * 13 % 251) as u8).collect();
    let (first, rest) = content.split_at_mut(4 * 1024);
    rest[..1024].copy_from_slice(&first[1024..2048]);
    let (chunks, manifest, m) = file_items(&content);
    assert_eq!(m.chunks[1], m.chunks[4]);
    let mut chunks = chunks.into_iter();
    let mut net = Net::new();
    let nodes = |a: &mut Agent, c: &mut Agent, net: &mut Net, t: u64| {
        net.contact(DtnTime(T0.0 + t), &mut [a, c], 0, 1, None);
        net.down(DtnTime(T0.0 + t), &mut [a, c], 0, 1);
    };
    submit(&mut a, T0, vec![manifest]);
    nodes(&mut a, &mut c, &mut net, 1);
    assert!(assembled(&net).is_empty(), "nothing to assemble yet");
    // Chunks 0..=4 (chunk 4 repeats chunk 1's CID): still one missing.
    submit(&mut a, T0, chunks.by_ref().take(5).collect());
    nodes(&mut a, &mut c, &mut net, 2);
    assert!(assembled(&net).is_empty(), "chunk 5 is still missing");
    submit(&mut a, T0, chunks.collect());
    nodes(&mut a, &mut c, &mut net, 3);
    assert_eq!(assembled(&net), vec![m.clone()], "assembled once, complete");
}

#[test]
fn a_file_whose_write_failed_is_asked_for_again_after_the_retry_delay() {
    let (mut a, mut c) = (agent("a"), agent("c"));
    let content: Vec<u8> = (0..3 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (chunks, manifest, m) = file_items(&content);
    let mut items = chunks;
    items.push(manifest);
    submit(&mut a, T0, items);
    let mut net = Net::new();
    net.contact(DtnTime(T0.0 + 1), &mut [&mut a, &mut c], 0, 1, None);
    assert_eq!(assembled(&net), vec![m.clone()]);
    let cid = m.cid().to_bytes();
    let t = T0.0 + 10;
    let failed = Event::AssemblyFailed {
        manifest_cid: cid.clone(),
    };
    assert!(c.handle(DtnTime(t), failed).unwrap().is_empty());
    let wake = c.next_wakeup().unwrap().expect("a retry is scheduled");
    assert!(wake.0 <= t + ASSEMBLY_RETRY_MS, "{wake:?}");
    let again = |acts: Vec<Action>| {
        acts.iter()
            .filter(
                |x| matches!(x, Action::AssembleFile { manifest_cid, .. } if *manifest_cid == cid),
            )
            .count()
    };
    let early = c.handle(DtnTime(t + ASSEMBLY_RETRY_MS - 1), Event::Tick);
    assert_eq!(again(early.unwrap()), 0, "not before the delay");
    let due = c.handle(DtnTime(t + ASSEMBLY_RETRY_MS), Event::Tick);
    assert_eq!(again(due.unwrap()), 1, "asked again once the delay passed");
    let later = c.handle(DtnTime(t + 3 * ASSEMBLY_RETRY_MS), Event::Tick);
    assert_eq!(again(later.unwrap()), 0, "once, not on every tick");
}
