//! The edge's front door: accepts sockets, admits them through the [`Gate`], and in each
//! connection's own task runs the TLS handshake and reads the MQTT CONNECT, each under its own
//! time-out, then hands the device over. Nothing in the accept loop waits on a client: a
//! socket that never speaks holds only its own task and its gate places, until it times out.
//!
//! A device is named by its certificate: the common name is its device id, the organisation
//! its topic prefix. Only MQTT 3.1.1 CONNECTs are taken (the protocol screens speak); a first
//! packet that is anything else, larger than the packet limit, or late, closes the socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Connect, Packet};
use rumqttc::mqttbytes::{Error as MqttError, Protocol};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::gate::{Admission, Gate};
use super::tls::{HandshakeError, handshake};

/// The front door's time-outs and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontLimits {
    /// From the first byte of TLS to a finished handshake.
    pub handshake: Duration,
    /// From the handshake to a complete CONNECT.
    pub connect: Duration,
    /// Largest MQTT packet a device may send, CONNECT included.
    pub max_packet: usize,
}

/// A device through the front door: who it is, what it asked for, and its connection.
#[derive(Debug)]
pub struct Arrival {
    pub device_id: String,
    pub prefix: String,
    /// The certificate's serial, lower-case hex.
    pub serial: String,
    pub peer: SocketAddr,
    pub connect: Connect,
    pub stream: TlsStream<TcpStream>,
    /// Bytes read after the CONNECT (the device may pipeline its first packets).
    pub read_ahead: BytesMut,
    /// Its places at the gate, held while it is connected.
    pub admission: Admission,
}

/// Why a socket did not get through.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error("the client certificate names no {0}")]
    Identity(&'static str),
    #[error("no CONNECT within {0:?}")]
    ConnectTimedOut(Duration),
    #[error("the connection closed before its CONNECT")]
    Closed,
    #[error("reading the CONNECT: {0}")]
    Io(std::io::Error),
    #[error("bad first packet: {0}")]
    Mqtt(String),
    #[error("the first packet must be an MQTT 3.1.1 CONNECT")]
    NotConnect,
}

/// Reads packets from `stream` into `buf` until one is complete, for at most `within`.
async fn first_packet(
    stream: &mut TlsStream<TcpStream>,
    buf: &mut BytesMut,
    limits: FrontLimits,
) -> Result<Packet, FrontError> {
    let read = async {
        loop {
            match Packet::read(buf, limits.max_packet) {
                Ok(packet) => return Ok(packet),
                Err(MqttError::InsufficientBytes(_)) => {}
                Err(e) => return Err(FrontError::Mqtt(e.to_string())),
            }
            if stream.read_buf(buf).await.map_err(FrontError::Io)? == 0 {
                return Err(FrontError::Closed);
            }
        }
    };
    tokio::time::timeout(limits.connect, read)
        .await
        .map_err(|_| FrontError::ConnectTimedOut(limits.connect))?
}

/// Takes one admitted socket through TLS and CONNECT.
pub async fn arrive(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    mut admission: Admission,
    limits: FrontLimits,
) -> Result<Arrival, FrontError> {
    let mut stream = handshake(acceptor, tcp, limits.handshake).await?;
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or(FrontError::Identity("certificate"))?;
    let info =
        luach_pki::inspect_certificate_der(certificate).map_err(|_| FrontError::Identity("readable certificate"))?;
    let device_id = info
        .device_id()
        .map(str::to_owned)
        .ok_or(FrontError::Identity("device id (OU)"))?;
    let prefix = info.organisation.ok_or(FrontError::Identity("topic prefix (O)"))?;
    let mut buf = BytesMut::with_capacity(512);
    let connect = match first_packet(&mut stream, &mut buf, limits).await? {
        Packet::Connect(c) if c.protocol == Protocol::V4 => c,
        _ => return Err(FrontError::NotConnect),
    };
    admission.connected();
    Ok(Arrival {
        device_id,
        prefix,
        serial: info.serial,
        peer,
        connect,
        stream,
        read_ahead: buf,
        admission,
    })
}

/// Accepts on `listener` until `stop`, handing every device that gets through to `arrived`
/// (in its own task). Refusals and failures are logged and cost only the socket.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    gate: Gate,
    acceptor: TlsAcceptor,
    limits: FrontLimits,
    arrived: F,
    stop: CancellationToken,
) where
    F: Fn(Arrival) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let arrived = Arc::new(arrived);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = gate.handshake_room() => {}
        }
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admission = match gate.admit(peer.ip()) {
            Ok(a) => a,
            Err(why) => {
                tracing::debug!(%peer, reason = %why, "connection refused at the gate");
                continue;
            }
        };
        let (acceptor, arrived) = (acceptor.clone(), arrived.clone());
        tokio::spawn(async move {
            match arrive(&acceptor, tcp, peer, admission, limits).await {
                Ok(arrival) => arrived(arrival).await,
                Err(e) => tracing::debug!(%peer, error = %e, "connection gave up before CONNECT"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::gate::GateLimits;
    use crate::edge::testing::{ca_and_acceptor, client_config, device, must};
    use crate::edge::tls::Revoked;
    use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode};
    use rumqttc::{AsyncClient, MqttOptions, QoS, TlsConfiguration, Transport};
    use tokio::io::AsyncWriteExt;
    use tokio::sync::mpsc;

    const LIMITS: FrontLimits = FrontLimits {
        handshake: Duration::from_secs(30),
        connect: Duration::from_secs(30),
        max_packet: 16 * 1024,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_device_gets_through_while_idle_sockets_hold_the_door() {
        let (ca, acceptor) = ca_and_acceptor(Revoked::default());
        let gate = Gate::new(GateLimits {
            max_total: 100,
            max_per_source: 100,
            max_handshakes: 80,
        });
        let listener = must(TcpListener::bind("127.0.0.1:0").await);
        let addr = must(listener.local_addr());
        let stop = CancellationToken::new();
        let (tx, mut arrivals) = mpsc::unbounded_channel();
        // What the rest of the edge will do, reduced: answer the CONNECT and pass the device on.
        let serving = tokio::spawn(serve(
            listener,
            gate.clone(),
            acceptor,
            LIMITS,
            move |mut a: Arrival| {
                let tx = tx.clone();
                async move {
                    let mut out = BytesMut::new();
                    must(ConnAck::new(ConnectReturnCode::Success, false).write(&mut out));
                    must(a.stream.write_all(&out).await);
                    let _ = tx.send(a);
                }
            },
            stop.clone(),
        ));

        // Fifty sockets that connect and never say a word.
        let mut idle = Vec::new();
        for _ in 0..50 {
            idle.push(must(TcpStream::connect(addr).await));
        }
        // A real MQTT client with its device certificate still gets in.
        let d = device(&ca, "screen7", "p0a1b2c3");
        let mut options = MqttOptions::new("screen7", "localhost", addr.port());
        options.set_transport(Transport::Tls(TlsConfiguration::Rustls(client_config(&ca, &d))));
        let (client, mut events) = AsyncClient::new(options, 10);
        let polling = tokio::spawn(async move {
            loop {
                if events.poll().await.is_err() {
                    break;
                }
            }
        });
        must(
            client
                .publish("/tenants/p0a1b2c3/up/hello", QoS::AtMostOnce, false, "hi")
                .await,
        );
        let arrival = tokio::time::timeout(Duration::from_secs(20), arrivals.recv()).await;
        let arrival = arrival
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("the device never got through"));
        assert_eq!(
            (arrival.device_id.as_str(), arrival.prefix.as_str()),
            ("screen7", "p0a1b2c3")
        );
        assert_eq!(arrival.serial, d.serial);
        assert_eq!(arrival.connect.client_id, "screen7");
        let (open, handshaking) = gate.open();
        assert_eq!(
            (open, handshaking),
            (51, 50),
            "the idle sockets still hold their places"
        );
        drop(idle);
        drop(arrival);
        stop.cancel();
        must(serving.await);
        polling.abort();
    }

    #[tokio::test]
    async fn a_first_packet_that_is_not_a_connect_closes_the_socket() {
        let (ca, acceptor) = ca_and_acceptor(Revoked::default());
        let gate = Gate::new(GateLimits {
            max_total: 10,
            max_per_source: 10,
            max_handshakes: 10,
        });
        let listener = must(TcpListener::bind("127.0.0.1:0").await);
        let addr = must(listener.local_addr());
        let d = device(&ca, "screen8", "p8");
        let connector = tokio_rustls::TlsConnector::from(client_config(&ca, &d));
        let client = tokio::spawn(async move {
            let tcp = must(TcpStream::connect(addr).await);
            let name = must(rustls::pki_types::ServerName::try_from("localhost"));
            let mut tls = must(connector.connect(name, tcp).await);
            // A PINGREQ before any CONNECT.
            must(tls.write_all(&[0xC0, 0x00]).await);
            must(tls.flush().await);
            let mut rest = Vec::new();
            let _ = tls.read_to_end(&mut rest).await;
            rest
        });
        let (tcp, peer) = must(listener.accept().await);
        let admission = must(gate.admit(peer.ip()));
        let refused = arrive(&acceptor, tcp, peer, admission, LIMITS).await;
        assert!(matches!(refused, Err(FrontError::NotConnect)), "{refused:?}");
        assert_eq!(must(client.await), Vec::<u8>::new(), "nothing is answered");
        assert_eq!(gate.open(), (0, 0), "its places are back");
    }
}
