//! Contract of `FileStore`.

use bytes::Bytes;
use futures_util::StreamExt as _;
use kernel::UserId;
use media_core::ports::FileStore;
use media_core::{FileKey, FileKind, Purpose};

suite!($
    /// Runs the `FileStore` contract: one test per behaviour.
    file_store_contract, files::file_store_behaviours, dyn FileStore, [
        files_are_stored_read_listed_and_removed_by_key,
        an_owners_files_are_listed_and_erased_apart_from_others,
        a_file_that_was_never_stored_opens_as_none,
    ]
);

fn owner(last: char) -> UserId {
    UserId::parse(&format!("0123456789abcdef0123456{last}")).unwrap_or_else(|e| panic!("{e}"))
}

fn key(owner: &UserId, hash_digit: char, purpose: Purpose, kind: FileKind) -> FileKey {
    FileKey::original(owner, purpose, &hash_digit.to_string().repeat(32), kind)
}

async fn read(store: &dyn FileStore, key: &FileKey) -> Option<Vec<u8>> {
    let body = store.open(key).await.unwrap_or_else(|e| panic!("{e}"))?;
    let mut bytes = Vec::new();
    let mut chunks = body.chunks;
    while let Some(chunk) = chunks.next().await {
        bytes.extend_from_slice(&chunk.unwrap_or_else(|e| panic!("{e}")));
    }
    assert_eq!(bytes.len() as u64, body.size);
    Some(bytes)
}

async fn listed(store: &dyn FileStore, owner: &UserId) -> Vec<String> {
    let mut names: Vec<String> = store
        .list(owner)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|file| file.key.to_string())
        .collect();
    names.sort();
    names
}

async fn files_are_stored_read_listed_and_removed_by_key(store: &dyn FileStore) {
    let ada = owner('7');
    let image = key(&ada, 'a', Purpose::Image, FileKind::Png);
    let resume = key(&ada, 'b', Purpose::Resume, FileKind::Pdf);
    store
        .put(&image, Bytes::from_static(b"png bytes"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut staged = store.stage().await.unwrap_or_else(|e| panic!("{e}"));
    staged
        .write(b"%PDF-")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    staged.write(b"1.7").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        staged.read_all().await.unwrap_or_else(|e| panic!("{e}")),
        b"%PDF-1.7"
    );
    staged
        .commit(&resume)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        read(store, &image).await.as_deref(),
        Some(&b"png bytes"[..])
    );
    assert_eq!(
        read(store, &resume).await.as_deref(),
        Some(&b"%PDF-1.7"[..])
    );
    let sizes: Vec<u64> = store
        .list(&ada)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|file| file.size)
        .collect();
    assert_eq!(sizes.iter().sum::<u64>(), 17, "{sizes:?}");
    assert_eq!(
        listed(store, &ada).await,
        [image.to_string(), resume.to_string()]
    );
    store.delete(&image).await.unwrap_or_else(|e| panic!("{e}"));
    store.delete(&image).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(read(store, &image).await.is_none());
    assert_eq!(listed(store, &ada).await, [resume.to_string()]);
}

async fn an_owners_files_are_listed_and_erased_apart_from_others(store: &dyn FileStore) {
    let (ada, bob) = (owner('7'), owner('8'));
    let adas = key(&ada, 'c', Purpose::Avatar, FileKind::Jpeg);
    let bobs = key(&bob, 'c', Purpose::Avatar, FileKind::Jpeg);
    for key in [&adas, &bobs] {
        store
            .put(key, Bytes::from_static(b"jpeg"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(listed(store, &ada).await, [adas.to_string()]);
    store
        .delete_all_of(&ada)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .delete_all_of(&ada)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(listed(store, &ada).await.is_empty());
    assert!(read(store, &adas).await.is_none());
    assert_eq!(read(store, &bobs).await.as_deref(), Some(&b"jpeg"[..]));
}

async fn a_file_that_was_never_stored_opens_as_none(store: &dyn FileStore) {
    let missing = key(&owner('9'), 'd', Purpose::Document, FileKind::Pdf);
    assert!(read(store, &missing).await.is_none());
    store
        .delete(&missing)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
