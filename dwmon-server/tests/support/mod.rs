//! What the server's integration tests share: a router served on a real loopback socket.

#![allow(dead_code)]

/// Serves `router` on a loopback port the OS picks, until the test's runtime ends; its
/// address.
pub async fn serve_on_loopback(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(dwmon_server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    addr
}

/// [`serve_on_loopback`], as the base URL `http://ADDR`.
pub async fn serve_url(router: axum::Router) -> String {
    format!("http://{}", serve_on_loopback(router).await)
}
