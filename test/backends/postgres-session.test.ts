/**
 * The PostgreSQL backend in session mode (each holding tied to a connection of its own by an
 * advisory lock) against a real throw-away cluster: the conformance suite, where a killed holder
 * frees the key at once (its connection ends) instead of at its TTL (`endsWithConnection`).
 */
import { postgresConformance } from './postgres-conformance.js';

postgresConformance('postgres (session mode)', 'session');
