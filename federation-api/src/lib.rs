//! The Causeway federation API: the catalog of clusters, service exports,
//! derived service imports, trust bundles and policies, stored in etcd and
//! served over REST and a gRPC watch.
