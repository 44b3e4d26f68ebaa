//! A bounded pool of recognition workers for async callers.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::{Cancel, SpeechToText, SttError, TranscribeOptions, Transcript};
use crate::audio::Samples;

struct Job {
    audio: Samples,
    options: TranscribeOptions,
    reply: oneshot::Sender<Result<Transcript, SttError>>,
}

/// `workers` threads share one loaded model; at most `queue` requests wait.
/// A caller beyond that waits for room (back-pressure) instead of spawning
/// more work. Dropping the pool lets queued jobs finish, then stops.
pub struct SttPool {
    sender: Option<mpsc::Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl SttPool {
    pub fn new(engine: Arc<dyn SpeechToText>, workers: usize, queue: usize) -> SttPool {
        let (sender, receiver) = mpsc::channel::<Job>(queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let workers = (0..workers.max(1))
            .map(|i| {
                let engine = engine.clone();
                let receiver = receiver.clone();
                std::thread::Builder::new()
                    .name(format!("stt-{i}"))
                    .spawn(move || loop {
                        // Hold the lock only while taking a job.
                        let job = match receiver.lock() {
                            Ok(mut r) => r.blocking_recv(),
                            Err(_) => None,
                        };
                        let Some(job) = job else { break };
                        let result = engine.transcribe(&job.audio, &job.options);
                        // The requester may have given up (barge-in): fine.
                        let _ = job.reply.send(result);
                    })
                    .expect("spawning a worker thread")
            })
            .collect();
        SttPool {
            sender: Some(sender),
            workers,
        }
    }

    /// Recognises `audio` on a worker thread.
    ///
    /// Cancel safety: dropping the future before it completes abandons the
    /// job: a queued job is skipped, and a running decode stops early, so
    /// abandoned speculative work does not delay the next caller.
    pub async fn transcribe(
        &self,
        audio: Samples,
        mut options: TranscribeOptions,
    ) -> Result<Transcript, SttError> {
        let cancel = options.cancel.get_or_insert_with(Cancel::default).clone();
        let _abandon_on_drop = CancelOnDrop(cancel);
        let (reply, result) = oneshot::channel();
        let sender = self.sender.as_ref().ok_or(SttError::Closed)?;
        sender
            .send(Job {
                audio,
                options,
                reply,
            })
            .await
            .map_err(|_| SttError::Closed)?;
        result.await.map_err(|_| SttError::Closed)?
    }
}

struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Drop for SttPool {
    fn drop(&mut self) {
        self.sender.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
