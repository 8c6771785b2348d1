// Owns FedProx (Li et al. 2020) on the coordinator's side: it aggregates as FedAvg; what makes it
// FedProx is μ, which clients use to add μ/2‖w − w_global‖² to their local loss (trainLocally's
// proximalMu, inside the compiled step), as Flower's FedProx strategy passes proximal_mu to clients.
import { KilnError } from '../../errors.js';
import { FedAvg } from './fedavg.js';

/** FedProx's settings. */
export interface FedProxArgs {
  /** μ, the proximal term's weight (> 0; Flower has no default, Li et al. try 0.001–1). */
  proximalMu: number;
}

/** FedProx: FedAvg's aggregation; clients train with the proximal term μ/2‖w − w_global‖². */
export class FedProx extends FedAvg {
  override readonly name = 'fedprox';
  /** The proximal term's weight μ clients train with. */
  readonly proximalMu: number;

  constructor(args: FedProxArgs) {
    super();
    if (!(Number.isFinite(args.proximalMu) && args.proximalMu >= 0)) throw new KilnError('INVALID_ARGUMENT', `FedProx: proximalMu must be a finite number >= 0, got ${args.proximalMu}`);
    this.proximalMu = args.proximalMu;
  }
}

/** FedProx (see FedProx). */
export function fedProx(args: FedProxArgs): FedProx {
  return new FedProx(args);
}
