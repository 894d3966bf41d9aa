/**
 * The PostgreSQL backend in lease mode against a real throw-away cluster: the conformance suite
 * (the multi-process tests included), an unreachable server and a wrong password.
 */
import { postgresConformance } from './postgres-conformance.js';

postgresConformance('postgres', 'lease');
