//! Threads of our own that run until the server stops (the unused-token sweep, the mail
//! sender): started with a stop signal to wait on, stopped by sending it and joining.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

pub struct BackgroundThread {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundThread {
    /// Runs `body` on a thread named `name`. It waits on the receiver between runs
    /// (`recv_timeout(every)`): a message, or a disconnect, means stop.
    pub fn spawn(name: &str, body: impl FnOnce(Receiver<()>) + Send + 'static) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(stopped))
            .unwrap_or_else(|e| panic!("spawn the {name} thread: {e}"));
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Tells the thread to stop and waits until it has finished what it was doing.
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
