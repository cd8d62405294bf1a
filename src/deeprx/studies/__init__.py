"""The paper's experiments as resumable sweeps over trials kept in an SQLite store."""
