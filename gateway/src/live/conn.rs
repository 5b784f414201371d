//! Connections the gateway can cut: a live client that stops reading is disconnected, even
//! while its connection is blocked writing to it.
//!
//! A server-sent events body is only polled when the socket takes more bytes, so a client
//! that never reads leaves the response stuck in a write and its stream is never asked for
//! the next event. Every accepted socket is wrapped in a [`CuttableStream`] whose
//! [`Cut`] handle reaches handlers through the connection info ([`Peer`]): cutting it makes
//! the next read or write fail and wakes the connection's task, so hyper closes it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The public listener: TCP connections that can be cut.
pub struct CuttableListener(pub TcpListener);

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        (
            CuttableStream {
                inner: stream,
                cut: Arc::new(Cut::default()),
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Listener::local_addr(&self.0)
    }
}

/// What a handler knows of its connection: the peer's address and the handle that cuts it.
#[derive(Clone, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    pub cut: Arc<Cut>,
}

impl Connected<IncomingStream<'_, CuttableListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        Peer {
            addr: *stream.remote_addr(),
            cut: stream.io().cut.clone(),
        }
    }
}

/// Cuts one connection: its reads and writes fail from then on.
#[derive(Debug, Default)]
pub struct Cut {
    cut: AtomicBool,
    /// The task waiting on the socket, woken when the connection is cut.
    waker: std::sync::Mutex<Option<Waker>>,
    /// For a task that waits on the cut itself (a WebSocket session).
    notify: tokio::sync::Notify,
}

impl Cut {
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let waker = self.waker.lock().map(|mut w| w.take()).unwrap_or_default();
        if let Some(waker) = waker {
            waker.wake();
        }
        self.notify.notify_one();
    }

    /// Completes once cut.
    pub async fn cut_off(&self) {
        while !self.is_cut() {
            self.notify.notified().await;
        }
    }

    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    fn park(&self, cx: &Context<'_>) {
        if let Ok(mut slot) = self.waker.lock() {
            match slot.as_ref() {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
    }
}

/// A TCP stream that fails once its [`Cut`] is cut.
pub struct CuttableStream {
    inner: TcpStream,
    cut: Arc<Cut>,
}

fn cut_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the gateway cut the connection",
    )
}

impl CuttableStream {
    fn check<T>(&self, cx: &Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if self.cut.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        if poll.is_pending() {
            self.cut.park(cx);
            // Cut between the check and the park: the wake may have been missed.
            if self.cut.is_cut() {
                return Poll::Ready(Err(cut_error()));
            }
        }
        poll
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.check(cx, poll)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.check(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
