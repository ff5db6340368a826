//! The protobuf codec of every generated client and server: tonic's prost codec, except that a
//! message that does not decode is `InvalidArgument` ("the caller sent bytes that are not this
//! message") rather than `Internal`, which would send the caller looking for a bug in the
//! master. Selected in `build.rs` with `codec_path`.

use std::marker::PhantomData;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Encodes `T` and decodes `U` as protobuf.
#[derive(Debug, Clone)]
pub struct FarmCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for FarmCodec<T, U> {
    fn default() -> Self {
        FarmCodec { _types: PhantomData }
    }
}

impl<T, U> Codec for FarmCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = FarmDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        FarmDecoder(ProstDecoder::default())
    }
}

/// Tonic's prost decoder with decode failures mapped to `InvalidArgument`.
#[derive(Debug)]
pub struct FarmDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for FarmDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| match status.code() {
            Code::Internal => {
                Status::invalid_argument(format!("malformed message: {}", status.message()))
            }
            _ => status,
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
