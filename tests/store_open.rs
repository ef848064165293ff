//! Opening a store whose file creation was cut short by a crash.

use spore::store::Store;

#[test]
fn a_headerless_store_file_is_set_aside_and_a_fresh_store_created() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.redb");
    std::fs::write(&path, vec![0u8; 4096]).unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.stats().unwrap().records, 0);
    let aside = tmp.path().join("store.redb.unusable");
    assert_eq!(
        std::fs::read(&aside).unwrap(),
        vec![0u8; 4096],
        "kept, not deleted"
    );
    drop(store);
    // A real store is opened as it is, not set aside.
    let again = Store::open(&path).unwrap();
    drop(again);
    assert!(!tmp.path().join("store.redb.unusable.1").exists());
}
