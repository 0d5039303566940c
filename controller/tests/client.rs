//! The controller's Kubernetes client can be built for an HTTPS apiserver.
//! (Without a rustls crypto provider selected, building it panics at
//! start-up inside the cluster; this catches that offline.)

#[tokio::test]
async fn an_https_client_can_be_built() {
    let url = "https://127.0.0.1:6443".parse().expect("valid url");
    let config = kube::Config::new(url);
    let client = kube::Client::try_from(config);
    assert!(client.is_ok(), "{:?}", client.err());
}
