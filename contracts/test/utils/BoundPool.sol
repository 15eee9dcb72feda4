// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {IFirnVerifierSet} from "../../src/interfaces/IFirnVerifierSet.sol";

/// @dev The back-pointers `FirnRegistry.setRewardPool` checks (decision 1756): a test pool that
/// names the registry it is set on and that registry's verifier set.
abstract contract BoundPool {
    IFirnRegistry public immutable registry;
    IFirnVerifierSet public immutable verifierSet;

    constructor(IFirnRegistry registry_) {
        registry = registry_;
        verifierSet = registry_.verifierSet();
    }
}
