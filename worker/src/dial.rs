//! Workers that dial their master (`farm worker --master URL`): connect with capped backoff and
//! jitter, open `WorkerService.Connect`, run the session, and start over when it is lost.

use crate::pool::Pool;
use crate::registry::Registry;
use crate::session::{self, End, Link};
use crate::{WorkerConfig, WorkerError};
use farm_net::Backoff;
use farm_proto::pb::worker_service_client::WorkerServiceClient;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tracing::{debug, info, warn};

/// Gives up on a master that never answered, for workers that exit with their master.
const FIRST_CONNECT_DEADLINE: Duration = Duration::from_secs(30);

/// Runs the worker until `shutdown` resolves (it then drains), or, with `exit_on_disconnect`,
/// until the master is lost.
pub async fn run<F>(
    config: WorkerConfig,
    registry: Registry,
    shutdown: F,
) -> Result<(), WorkerError>
where
    F: Future<Output = ()> + Send,
{
    let endpoint = farm_net::endpoint(&config.master, config.tls.clone())
        .map_err(WorkerError::BadMasterUrl)?;
    let pool = Pool::new(config.threads.max(1)).map_err(WorkerError::Threads)?;
    tokio::pin!(shutdown);
    let started = Instant::now();
    let mut backoff = Backoff::new(config.max_backoff);
    let mut ever_connected = false;
    // Since when no session has held the worker: its idle timeout counts while no master
    // answers, too, so a worker whose master is gone does not hold its allocation forever.
    let mut unattached = Instant::now();
    loop {
        if let Some(idle) = config.lifetime.idle_timeout.filter(|t| unattached.elapsed() >= *t) {
            info!(idle_ms = idle.as_millis() as u64, "no master for the idle timeout, leaving");
            return Ok(());
        }
        let attempt = tokio::select! {
            _ = shutdown.as_mut() => return Ok(()),
            c = endpoint.connect() => c,
        };
        // Whether this attempt was welcomed: a mismatch hint fits only one that was not.
        let (welcomed, end) = match attempt {
            Ok(channel) => session_on(channel, &config, &registry, &pool, &mut shutdown).await?,
            Err(e) => {
                (false, End::Lost(format!("cannot connect: {}", farm_net::tls::error_chain(&e))))
            }
        };
        if welcomed {
            ever_connected = true;
            backoff.reset();
            unattached = Instant::now();
        }
        match end {
            End::Shutdown => return Ok(()),
            End::Rejected(reason) => return Err(WorkerError::Rejected(reason)),
            End::Lost(reason) if config.exit_on_disconnect => {
                if ever_connected || started.elapsed() > FIRST_CONNECT_DEADLINE {
                    return Err(WorkerError::MasterLost(reason));
                }
            }
            End::Lost(reason) => {
                let hint = farm_net::tls::mismatch_hint(&reason, config.tls.is_some())
                    .filter(|_| !welcomed);
                warn!(master = %config.master, %reason, hint, "no session with the master, reconnecting")
            }
        }
        let delay = backoff.next();
        debug!(delay_ms = delay.as_millis() as u64, "reconnecting after backoff");
        tokio::select! {
            _ = shutdown.as_mut() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Opens `WorkerService.Connect` on a connected channel and runs the session. Returns whether
/// the master welcomed the worker and how the session ended.
async fn session_on<F: Future<Output = ()>>(
    channel: Channel,
    config: &WorkerConfig,
    registry: &Registry,
    pool: &Pool,
    shutdown: &mut Pin<&mut F>,
) -> Result<(bool, End), WorkerError> {
    let mut client = WorkerServiceClient::new(channel)
        .max_decoding_message_size(farm_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(farm_proto::MAX_MESSAGE_BYTES);
    let (tx, rx) = session::outgoing();
    // Queued before the call: the master answers only once it has the registration.
    session::register(&tx, config, registry).await;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    farm_net::auth::attach(&mut request, config.token.as_deref())
        .map_err(|s| WorkerError::Rejected(s.message().to_string()))?;
    match client.connect(request).await {
        Ok(response) => {
            let inbound = Box::pin(response.into_inner());
            let link = Link { inbound, tx, peer: config.master.clone() };
            Ok(session::run_session(link, config, registry, pool, shutdown).await)
        }
        Err(status) => Ok((false, session::end_of(status))),
    }
}
