//! The log sink: lossless, batched, and cheap for the request that writes a line.
//!
//! A line is appended to a shared buffer under a lock held only for the copy (never for I/O). A
//! background thread writes the buffer out every [`FLUSH_INTERVAL`], or as soon as [`HIGH_WATER`]
//! bytes wait. A busy gate therefore wakes that thread about twenty times a second, not once per
//! request: with a channel per line (tracing-appender's writer), every access-log line cost the
//! request a futex wake-up and the writer thread a context switch on the gate's core.
//!
//! Nothing is dropped: when the output is slower than the gate and [`MAX_PENDING`] bytes wait,
//! writers block until the thread has drained them (the same back-pressure the channel applied
//! when it was full). Dropping the [`FlushGuard`] writes out what is left before the process exits.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits before it is written out.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Bytes waiting that wake the writer thread at once.
pub const HIGH_WATER: usize = 64 * 1024;
/// Bytes waiting beyond which writers wait for the writer thread.
pub const MAX_PENDING: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// The writer thread waits here for [`HIGH_WATER`], the interval, or the close.
    wake: Condvar,
    /// Writers over [`MAX_PENDING`] wait here for the writer thread to take the buffer.
    drained: Condvar,
}

impl Shared {
    /// The lock, also after a panic elsewhere: a log line is never worth a second panic.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `MakeWriter` the subscriber formats into (one `write` per formatted line).
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Writes out what is still waiting, and stops the writer thread, when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchWriter {
    /// A writer whose lines end up in `sink`, written by a thread of its own.
    pub fn new(
        mut sink: impl Write + Send + 'static,
    ) -> std::io::Result<(BatchWriter, FlushGuard)> {
        let shared = Arc::new(Shared::default());
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("mcp-gate-log".into())
            .spawn(move || drain(&for_thread, &mut sink))?;
        Ok((
            BatchWriter {
                shared: shared.clone(),
            },
            FlushGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }
}

/// The writer thread: takes the whole buffer at once and writes it outside the lock.
fn drain(shared: &Shared, sink: &mut impl Write) {
    let mut out = Vec::with_capacity(HIGH_WATER);
    loop {
        let closed = {
            let mut pending = shared.lock();
            if pending.bytes.len() < HIGH_WATER && !pending.closed {
                pending = shared
                    .wake
                    .wait_timeout(pending, FLUSH_INTERVAL)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::swap(&mut pending.bytes, &mut out);
            shared.drained.notify_all();
            pending.closed
        };
        if !out.is_empty() {
            // A failed write (stdout closed) cannot be reported anywhere better; keep draining so
            // writers never block on a dead output.
            let _ = sink.write_all(&out).and_then(|()| sink.flush());
            out.clear();
        }
        if closed && shared.lock().bytes.is_empty() {
            return;
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Write for BatchWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.lock();
        while pending.bytes.len() >= MAX_PENDING && !pending.closed {
            pending = self
                .shared
                .drained
                .wait(pending)
                .unwrap_or_else(|e| e.into_inner());
        }
        pending.bytes.extend_from_slice(buf);
        if pending.bytes.len() >= HIGH_WATER {
            self.shared.wake.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Lines are written out by the thread; a flush per line would undo the batching.
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = BatchWriter;

    fn make_writer(&'a self) -> BatchWriter {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read while the writer thread owns it.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_in_order_and_the_guard_writes_out_the_rest() {
        let sink = Sink::default();
        let (writer, guard) = BatchWriter::new(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = writer.make_writer();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        w.write_all(format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 20_000, "no line lost");
        for t in 0..4 {
            let mine: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..5_000).collect::<Vec<_>>(), "writer {t} in order");
        }
    }

    #[test]
    fn a_line_is_written_out_within_the_interval_without_more_traffic() {
        let sink = Sink::default();
        let (mut writer, _guard) = BatchWriter::new(sink.clone()).unwrap();
        writer.write_all(b"one line\n").unwrap();
        let deadline = std::time::Instant::now() + FLUSH_INTERVAL * 20;
        while sink.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written out");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(&sink.0.lock().unwrap()[..], b"one line\n");
    }
}
