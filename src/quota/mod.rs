//! The embedded quota engine: rate limits, slots, gauges, metering and its HTTP API.
