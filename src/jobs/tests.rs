use super::*;
use crate::bundle::DtnTime;

fn job_id() -> BundleId {
    "dtn://a/#846000000000.3".parse().expect("valid ID")
}

#[test]
fn request_round_trips_and_defaults_result_to_source() {
    let mut r = JobRequest::inline("wc", b"hello".to_vec());
    r.deadline_ms = Some(900_000_000_000);
    let back = JobRequest::decode(&r.encode()).expect("decodes");
    assert_eq!(back, r);
    assert_eq!(
        back.result_destination(&job_id()).to_string(),
        "dtn://a/job-results"
    );
    r.result_to = Some("dtn://c/inbox".into());
    assert_eq!(r.result_destination(&job_id()).to_string(), "dtn://c/inbox");
}

#[test]
fn chunk_input_round_trips() {
    let mut r = JobRequest::inline("sum", Vec::new());
    let cid = crate::content::chunk_cid(b"chunk").to_bytes();
    r.input = JobInput::Chunks(vec![serde_bytes::ByteBuf::from(cid)]);
    r.class = JobClass::Realtime;
    assert_eq!(JobRequest::decode(&r.encode()).expect("decodes"), r);
    // A truncated CID is refused by the decoder, naming the field.
    r.input = JobInput::Chunks(vec![serde_bytes::ByteBuf::from(vec![1, 85, 18, 32])]);
    assert!(matches!(
        JobRequest::decode(&r.encode()),
        Err(JobDecodeError::Field { field: "input", .. })
    ));
}

#[test]
fn bad_requests_are_typed_errors() {
    assert!(matches!(
        JobRequest::decode(b"\xff\x00garbage"),
        Err(JobDecodeError::Cbor(_))
    ));
    let big = vec![0u8; MAX_JOB_BYTES + 1];
    assert!(matches!(
        JobRequest::decode(&big),
        Err(JobDecodeError::TooLarge { .. })
    ));
    let mut r = JobRequest::inline("a b", Vec::new());
    assert!(matches!(
        JobRequest::decode(&r.encode()),
        Err(JobDecodeError::Field {
            field: "service",
            ..
        })
    ));
    r.service = "ok".into();
    r.v = 9;
    assert!(matches!(
        JobRequest::decode(&r.encode()),
        Err(JobDecodeError::Version(9))
    ));
    r.v = FORMAT_VERSION;
    r.result_to = Some("not an eid".into());
    assert!(matches!(
        JobRequest::decode(&r.encode()),
        Err(JobDecodeError::Field {
            field: "result_to",
            ..
        })
    ));
}

#[test]
fn result_round_trips_with_each_status() {
    let exec: Eid = "dtn://b/".parse().expect("valid EID");
    let mut ok = JobResult::error(&job_id(), &exec, JobErrorKind::Timeout, "x");
    ok.status = JobStatus::Ok;
    ok.output = b"5\n".to_vec();
    assert_eq!(JobResult::decode(&ok.encode()).expect("decodes"), ok);
    for kind in [
        JobErrorKind::UnknownService,
        JobErrorKind::ExitCode(3),
        JobErrorKind::OverLimits,
        JobErrorKind::RefusedBusy,
    ] {
        let e = JobResult::error(&job_id(), &exec, kind, "why");
        assert_eq!(JobResult::decode(&e.encode()).expect("decodes"), e);
    }
    let long = "é".repeat(MAX_DETAIL);
    let e = JobResult::error(&job_id(), &exec, JobErrorKind::BadRequest, &long);
    let JobStatus::Error { detail, .. } = e.status else {
        panic!("error status expected");
    };
    assert!(detail.len() <= MAX_DETAIL);
}

#[test]
fn result_timestamp_is_deterministic_and_distinct_per_job() {
    let a = result_timestamp(&job_id());
    assert_eq!(a, result_timestamp(&job_id()));
    assert_eq!(a.time, DtnTime(846_000_000_000));
    assert!(a.sequence >= 1 << 63);
    let other: BundleId = "dtn://z/#846000000000.3".parse().expect("valid ID");
    assert_ne!(a, result_timestamp(&other));
}

#[test]
fn services_json_parses_and_validates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("s.json");
    std::fs::write(
        &p,
        r#"[{"name":"wc","kind":"exec","command":["wc","-c"],"time_limit_ms":5000},
            {"name":"llm","kind":"ollama","url":"http://127.0.0.1:11434","models":["m"],"concurrency":2}]"#,
    )
    .expect("write");
    let v = JobsConfig::load_services(&p).expect("loads");
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].concurrency, 1);
    assert!(
        matches!(v[0].kind, ServiceKind::Exec { max_output_bytes, .. } if max_output_bytes == 8 << 20)
    );
    std::fs::write(&p, r#"[{"name":"x","kind":"exec","command":[]}]"#).expect("write");
    assert!(matches!(
        JobsConfig::load_services(&p),
        Err(ServicesFileError::Invalid { .. })
    ));
    std::fs::write(&p, r#"[{"name":"x","kind":"teleport"}]"#).expect("write");
    assert!(matches!(
        JobsConfig::load_services(&p),
        Err(ServicesFileError::Parse { .. })
    ));
}
