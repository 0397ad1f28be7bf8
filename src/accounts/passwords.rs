//! Password hashing off the async workers, and never more of it at once than there are cores:
//! argon2 is slow on purpose, and a burst of sign-ins must not take every core from the token
//! checks that other services wait on.

use std::sync::OnceLock;

use tokio::sync::Semaphore;

use crate::domain;

fn hashing_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Semaphore::new(cores)
    })
}

async fn with_slot<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let _slot = hashing_slots().acquire().await?;
    Ok(actix_web::web::block(work).await?)
}

/// An argon2id hash of `password`.
pub async fn hash(password: String) -> anyhow::Result<String> {
    with_slot(move || domain::hash_password(&password)).await?
}

/// Whether `password` matches `stored`; with no stored hash it does the same work and says no.
pub async fn verify(stored: Option<String>, password: String) -> anyhow::Result<bool> {
    with_slot(move || domain::verify_password(stored.as_deref(), &password)).await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[actix_web::test]
    async fn no_more_hashes_run_at_once_than_there_are_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs = (0..cores * 4).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            with_slot(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        for done in futures_util::future::join_all(jobs).await {
            done.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), cores);
    }
}
