//! The Causeway east-west gateway: egress and mTLS ingress listeners on
//! Pingora, the routing engine and the cluster agent.
