//! The seam between the control plane and the data plane: the control
//! plane checks every data-plane call's arguments and the channel's plan,
//! then hands the call to [`crate::data::DataPlane`] with the channel's
//! [`crate::cs::plans::Gate`]. The data plane lives in `crate::data`.

pub use crate::data::{DataPlane, EventCall};
