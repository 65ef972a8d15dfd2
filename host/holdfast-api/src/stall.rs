//! A client that stops reading its reply would otherwise hold a connection slot (and
//! the reply's buffers) for ever once the socket's send buffer fills. [`WriteDeadline`]
//! fails a write that makes no progress for [`WRITE_STALL`]; the connection then
//! closes. A client that reads slowly but steadily is never cut off, and an idle
//! long-lived stream (events) has nothing pending, so it is not timed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The longest a reply write may wait for the client to take any of it.
pub const WRITE_STALL: Duration = Duration::from_secs(30);

pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write is pending; cleared on progress.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        WriteDeadline { inner, limit, timer: None }
    }

    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let limit = self.limit;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client took none of the reply for {} s", limit.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(&mut self, r: std::io::Result<T>) -> Poll<std::io::Result<T>> {
        self.timer = None;
        Poll::Ready(r)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(r) => self.progressed(r),
            Poll::Pending => self.pending(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => self.progressed(r),
            Poll::Pending => self.pending(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(r) => self.progressed(r),
            Poll::Pending => self.pending(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_is_cut_off_and_a_steady_one_is_not() {
        // A 64 KiB pipe whose far end nobody reads: the write stalls, then fails.
        let (near, _far) = tokio::io::duplex(64 * 1024);
        let mut w = WriteDeadline::new(near, Duration::from_secs(30));
        let big = vec![7u8; 1 << 20];
        let err = w.write_all(&big).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);

        // The same reply to a reader that takes 64 KiB every 20 s (never 30 s idle).
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = vec![0u8; 64 * 1024];
            while got < (1 << 20) {
                tokio::time::sleep(Duration::from_secs(20)).await;
                got += far.read(&mut buf).await.unwrap();
            }
            got
        });
        let mut w = WriteDeadline::new(near, Duration::from_secs(30));
        w.write_all(&big).await.unwrap();
        assert_eq!(reader.await.unwrap(), 1 << 20);
    }
}
