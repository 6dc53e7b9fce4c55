//! The idle cap of [`serve`](crate::serve): a connection that moves no byte in either
//! direction for longer than its timeout is closed, so idle keep-alive sockets (clients that
//! open a connection and forget it) cannot pile up.
//!
//! [`IdleListener`] wraps a [`TcpListener`]; each accepted stream is an [`IdleStream`], whose
//! reads fail with [`io::ErrorKind::TimedOut`] once it has been idle for the timeout, which
//! makes the HTTP server drop the connection. Any byte read or written restarts the timer.
//! Handlers that take longer than the timeout without writing would be cut too: the timeout
//! is meant to be far longer than any request takes (the default is
//! [`DEFAULT_IDLE_TIMEOUT`]; pings wait at most 2 s for their commit).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// How long [`crate::serve`] lets a connection sit idle: 60 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A listener whose connections close after `timeout` without traffic ([`IdleStream`]).
#[derive(Debug)]
pub struct IdleListener {
    listener: TcpListener,
    timeout: Duration,
}

impl IdleListener {
    /// Wraps `listener`; its connections are closed after `timeout` idle.
    pub fn new(listener: TcpListener, timeout: Duration) -> Self {
        IdleListener { listener, timeout }
    }
}

impl axum::serve::Listener for IdleListener {
    type Io = IdleStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        (IdleStream::new(stream, self.timeout), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A stream whose reads fail with [`io::ErrorKind::TimedOut`] after `timeout` without a byte
/// read or written.
#[derive(Debug)]
pub struct IdleStream<S> {
    inner: S,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<S> IdleStream<S> {
    /// Wraps `inner`, idle from now.
    pub fn new(inner: S, timeout: Duration) -> Self {
        IdleStream {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn active(&mut self) {
        let next = Instant::now() + self.timeout;
        self.deadline.as_mut().reset(next);
    }

    /// `Ready(Err(TimedOut))` once the deadline passed (registering the waker otherwise).
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.expired(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_stream_times_out_only_after_the_timeout_without_traffic() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut stream = IdleStream::new(near, Duration::from_secs(10));
        let started = Instant::now();
        // Traffic at 6 s and 12 s keeps it open past the first 10 s.
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            far.write_all(b"x").await.unwrap();
            let mut byte = [0_u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
        }
        let mut byte = [0_u8; 1];
        let error = stream.read(&mut byte).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(22));
    }
}
