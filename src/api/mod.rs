//! The custom resources Landlord serves.
